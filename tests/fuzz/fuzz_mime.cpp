// libFuzzer target for the MIME views of hostile messages (message/view.hpp: GMime's parser, RFC
// 2047 words, charsets, RFC 2231 names) and the multipart/form-data parser of the portal's reply
// form (message/form_data.hpp, RFC 7578). Invariants: limits hold; every text handed to a person is
// valid UTF-8; every attachment name is a safe file name (sanitize_filename's contract, and
// sanitizing it again changes nothing); form parts have names and lower-case types.
#include <string>

#include "fuzz_common.hpp"
#include "message/form_data.hpp"
#include "message/view.hpp"
#include "smtp/utf8.hpp"

using namespace mailward;

namespace {

void check_filename(const std::string& f) {
    fuzz::check(!f.empty() && f.size() <= 120, "file name length");
    fuzz::check(smtp::detail::valid_utf8(f), "file name is UTF-8");
    for (unsigned char c : f) {
        fuzz::check(c >= 0x20 && c != 0x7f, "no control character in a file name");
        fuzz::check(
            c != '/' && c != '\\' && c != '"' && c != ':' && c != '<' && c != '>' && c != '|' && c != '?' && c != '*',
            "no path or reserved character in a file name");
    }
    fuzz::check(f.front() != '.', "no leading dot");
    fuzz::check(f.back() != '.' && f.back() != ' ', "no trailing dot or space");
    fuzz::check(message::sanitize_filename(f) == f, "sanitize_filename is idempotent");
}

void check_view(const message::MessageView& v, const message::ParseLimits& limits) {
    for (const std::string* s : {&v.from, &v.to, &v.cc, &v.reply_to, &v.subject, &v.date, &v.message_id, &v.text})
        fuzz::check(smtp::detail::valid_utf8(*s), "header and text are UTF-8");
    fuzz::check(smtp::detail::valid_utf8(v.html), "HTML body is UTF-8");
    fuzz::check(v.attachments.size() <= limits.max_parts, "attachment count within max_parts");
    for (const auto& a : v.attachments) {
        check_filename(a.filename);
        for (char c : a.content_type) fuzz::check(!(c >= 'A' && c <= 'Z'), "content type in lower case");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t bits = in.byte();
    const std::string_view text = in.rest();

    message::ParseLimits limits;
    if (bits & 1) {
        limits.max_parts = 1 + (bits >> 4);
        limits.max_depth = 1 + ((bits >> 1) & 7);
    }
    if (auto v = message::parse_message(text, limits)) check_view(*v, limits);
    check_filename(message::sanitize_filename(text));

    // Form data: the first line is the Content-Type header, the rest the body.
    const auto eol = text.find('\n');
    if (eol != std::string_view::npos) {
        const std::size_t max_parts = 1 + (bits >> 2);
        if (auto parts = message::parse_form_data(text.substr(0, eol), text.substr(eol + 1), max_parts)) {
            fuzz::check(parts->size() <= max_parts, "form parts within max_parts");
            for (const auto& p : *parts) {
                fuzz::check(!p.name.empty(), "form part has a name");
                fuzz::check(p.content_type.find(';') == std::string::npos, "form part type has no parameters");
                for (char c : p.content_type) fuzz::check(!(c >= 'A' && c <= 'Z'), "form part type in lower case");
            }
        }
    }
    return 0;
}
