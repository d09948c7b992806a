// libFuzzer target: DataDecoder fed in random chunks (sizes from a generator seeded by the first
// input bytes). Checks consumed <= chunk, nothing consumed after done, the result is independent of
// chunking, and, when done, matches a straightforward reference model of RFC 5321 4.5.2 with the
// CRLF-only line rule (end position, unstuffed body, size and every flag).
#include <string>

#include "fuzz_common.hpp"
#include "smtp/data.hpp"

using namespace mailward;
using namespace mailward::smtp;

namespace {

struct Outcome {
    bool done = false;
    std::size_t consumed = 0;
    std::string body;
    std::uint64_t size = 0;
    bool flags[6] = {};
};

Outcome finish(DataDecoder& d, std::size_t consumed) {
    Outcome o;
    o.done = d.done();
    o.consumed = consumed;
    o.size = d.size();
    bool f[6] = {d.too_large(), d.long_line(), d.bare_lf(), d.bare_cr(), d.nul(), d.eight_bit()};
    for (int i = 0; i < 6; ++i) o.flags[i] = f[i];
    o.body = d.take_body();
    return o;
}

bool same(const Outcome& a, const Outcome& b) {
    for (int i = 0; i < 6; ++i) {
        if (a.flags[i] != b.flags[i]) return false;
    }
    return a.done == b.done && a.consumed == b.consumed && a.body == b.body && a.size == b.size;
}

// Reference: where the data ends, computed by searching the raw text.
std::size_t reference_end(std::string_view in) {
    if (in.substr(0, 3) == ".\r\n") return 3;
    const std::size_t at = in.find("\r\n.\r\n");
    return at == std::string_view::npos ? std::string_view::npos : at + 5;
}

void check_reference(std::string_view in, std::uint64_t max, const Outcome& got) {
    const std::size_t end = reference_end(in);
    fuzz::check(got.done == (end != std::string_view::npos), "done iff the raw text holds the end sequence");
    if (!got.done) {
        fuzz::check(got.consumed == in.size(), "everything consumed while not done");
        return;
    }
    fuzz::check(got.consumed == end, "stops right after the first end sequence");
    const std::string_view text = in.substr(0, end - 3);  // up to and including the last CRLF
    std::string body;
    bool bare_lf = false, bare_cr = false, nul = false, eight = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool line_start = i == 0 || (i >= 2 && text[i - 2] == '\r' && text[i - 1] == '\n');
        if (c == '.' && line_start) continue;  // dot-stuffing
        if (c == '\n' && (i == 0 || text[i - 1] != '\r')) bare_lf = true;
        if (c == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n')) bare_cr = true;
        if (c == '\0') nul = true;
        if (static_cast<unsigned char>(c) >= 0x80) eight = true;
        body.push_back(c);
    }
    bool long_line = false;
    for (std::size_t pos = 0; pos < body.size();) {
        std::size_t eol = body.find("\r\n", pos);
        if (eol == std::string::npos) eol = body.size();
        if (eol - pos > 998) long_line = true;
        pos = eol + 2;
    }
    const bool too_large = max != 0 && body.size() > max;
    fuzz::check(got.size == body.size(), "size is the unstuffed length");
    fuzz::check(got.flags[0] == too_large, "too_large");
    fuzz::check(got.flags[1] == long_line, "long_line");
    fuzz::check(got.flags[2] == bare_lf, "bare_lf");
    fuzz::check(got.flags[3] == bare_cr, "bare_cr");
    fuzz::check(got.flags[4] == nul, "nul");
    fuzz::check(got.flags[5] == eight, "eight_bit");
    fuzz::check(too_large ? got.body.empty() : got.body == body, "body is the unstuffed text");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint64_t limits[] = {0, 1, 16, 1000};
    const std::uint64_t max = limits[in.byte() % 4];
    std::uint32_t seed = in.byte() | (in.byte() << 8) | 1u;
    const std::string_view text = in.rest();

    DataDecoder whole(max);
    const std::size_t whole_used = whole.feed(text);
    fuzz::check(whole_used <= text.size(), "consumed <= input size");
    fuzz::check(whole_used == text.size() || whole.done(), "stops early only when done");
    const Outcome expect = finish(whole, whole_used);

    DataDecoder chunked(max);
    std::size_t used = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        seed = seed * 1103515245u + 12345u;
        const std::size_t n = 1 + (seed >> 16) % 17;
        const std::string_view chunk = text.substr(pos, n);
        const std::size_t k = chunked.feed(chunk);
        fuzz::check(k <= chunk.size(), "chunk: consumed <= chunk size");
        fuzz::check(k == chunk.size() || chunked.done(), "chunk: stops early only when done");
        used += k;
        pos += chunk.size();
        if (chunked.done()) {
            fuzz::check(chunked.feed(text.substr(pos)) == 0, "nothing consumed after done");
            break;
        }
    }
    fuzz::check(same(finish(chunked, used), expect), "chunking does not change the result");
    check_reference(text, max, expect);
    return 0;
}
