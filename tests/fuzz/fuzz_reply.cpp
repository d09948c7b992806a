// libFuzzer target for the client-side ReplyParser (lines split at LF) and the SASL helpers:
// a done reply has a valid code and survives wire() -> parse unchanged; base64 round trips and
// strict decoding of the raw input never yields text that encodes back differently.
#include <string>

#include "fuzz_common.hpp"
#include "smtp/reply.hpp"
#include "smtp/sasl.hpp"

using namespace mailward;
using namespace mailward::smtp;

namespace {

Reply reparse(const Reply& r) {
    ReplyParser p;
    const std::string wire = r.wire();
    ReplyParser::Status st = ReplyParser::Status::need_more;
    for (std::size_t pos = 0; pos < wire.size();) {
        const std::size_t eol = wire.find("\r\n", pos);
        fuzz::check(eol != std::string::npos, "wire lines end in CRLF");
        st = p.feed(std::string_view(wire).substr(pos, eol - pos));
        pos = eol + 2;
    }
    fuzz::check(st == ReplyParser::Status::done, "wire() parses back");
    return p.take();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    ReplyParser parser;
    for (std::size_t pos = 0; pos <= text.size();) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        const auto st = parser.feed(text.substr(pos, eol - pos));
        if (st == ReplyParser::Status::done) {
            const Reply r = parser.take();
            fuzz::check(r.code >= 200 && r.code <= 559, "reply code range");
            fuzz::check(!r.lines.empty() && r.lines.size() <= ReplyParser::kMaxLines, "line count");
            const Reply back = reparse(r);
            fuzz::check(back.code == r.code && back.lines == r.lines, "reply round trip");
            fuzz::check(r.enhanced.empty() || back.enhanced == r.enhanced, "enhanced code round trip");
        }
        pos = eol + 1;
    }

    const std::string b64 = base64_encode(text);
    auto back = base64_decode(b64);
    fuzz::check(back && *back == text, "base64 round trip");
    if (auto raw = base64_decode(text)) {
        fuzz::check(base64_encode(*raw) == text, "strict base64: only canonical text decodes");
    }
    if (auto creds = decode_plain(text)) {
        fuzz::check(!creds->authcid.empty() && !creds->password.empty(), "PLAIN parts present");
        fuzz::check(creds->authzid.empty() || creds->authzid == creds->authcid, "PLAIN authzid");
        fuzz::check(creds->authzid.size() + creds->authcid.size() + creds->password.size() + 2 == text.size(),
                    "PLAIN parts cover the message");
    }
    return 0;
}
