// Composing a message with GMime (see compose.hpp). GMime chooses encoded words and RFC 2231
// parameters when it writes; this file picks each part's transfer encoding (quoted-printable or
// base64 for anything not 7-bit, base64 for attachments) and writes CRLF line ends, checked on the
// result (smtp::normalise_line_ends: no bare CR or LF, no NUL, as the SMTP client requires).
#include "message/compose.hpp"

#include <sodium.h>

#include "common/timefmt.hpp"
#include "message/gmime_util.hpp"
#include "smtp/data_encode.hpp"

namespace mailward::message {
namespace {

using detail::Ptr;

bool add_addresses(GMimeMessage* msg, GMimeAddressType type, const std::string& text) {
    Ptr<InternetAddressList> list(internet_address_list_parse(nullptr, text.c_str()));
    if (!list || internet_address_list_length(list.get()) == 0) return false;
    internet_address_list_append(g_mime_message_get_addresses(msg, type), list.get());
    return true;
}

Ptr<GMimeObject> text_part(const char* subtype, const std::string& text) {
    GMimeTextPart* tp = g_mime_text_part_new_with_subtype(subtype);
    // GMime picks the charset (us-ascii, iso-8859-1 or utf-8) and labels the part with it.
    g_mime_text_part_set_text(tp, text.c_str());
    auto* part = GMIME_PART(tp);
    g_mime_part_set_content_encoding(part, g_mime_part_get_best_content_encoding(part, GMIME_ENCODING_CONSTRAINT_7BIT));
    return Ptr<GMimeObject>(GMIME_OBJECT(tp));
}

Ptr<GMimeObject> attachment_part(const Attachment& a) {
    std::string type = a.content_type.empty() ? "application/octet-stream" : a.content_type;
    auto slash = type.find('/');
    std::string major = slash == std::string::npos ? "application" : type.substr(0, slash);
    std::string minor = slash == std::string::npos ? "octet-stream" : type.substr(slash + 1);
    GMimePart* part = g_mime_part_new_with_type(major.c_str(), minor.c_str());
    auto stream = detail::stream_of(a.data);
    Ptr<GMimeDataWrapper> dw(g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
    g_mime_part_set_content(part, dw.get());
    g_mime_object_set_disposition(GMIME_OBJECT(part), a.inline_disposition ? "inline" : "attachment");
    g_mime_part_set_filename(part, sanitize_filename(a.filename).c_str());
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
    if (!a.content_id.empty()) g_mime_part_set_content_id(part, a.content_id.c_str());
    return Ptr<GMimeObject>(GMIME_OBJECT(part));
}

std::string new_message_id(const std::string& from) {
    unsigned char raw[12];
    randombytes_buf(raw, sizeof raw);
    char hex[25];
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    auto at = from.rfind('@');
    std::string domain = at == std::string::npos ? "localhost" : from.substr(at + 1);
    while (!domain.empty() && (domain.back() == '>' || domain.back() == ' ')) domain.pop_back();
    return std::string(hex) + "@" + (domain.empty() ? "localhost" : domain);
}

// No CR, LF or NUL where GMime writes the value as given (ids, types, header names): they would
// start a header of the caller's choosing.
bool header_safe(std::string_view v) {
    return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool header_name_ok(std::string_view n) {
    if (n.empty()) return false;
    for (unsigned char c : n)
        if (c <= 0x20 || c >= 0x7f || c == ':') return false;
    return true;
}

bool inputs_safe(const ComposeInput& in) {
    if (!header_safe(in.message_id) || !header_safe(in.in_reply_to) || !header_safe(in.date)) return false;
    for (const auto& [k, v] : in.extra_headers)
        if (!header_name_ok(k) || !header_safe(v)) return false;
    for (const auto& a : in.attachments)
        if (!header_safe(a.content_type) || !header_safe(a.content_id) || a.content_type.find(';') != std::string::npos)
            return false;
    return true;
}

}  // namespace

Result<std::string> compose_message(const ComposeInput& in) {
    detail::init();
    if (!inputs_safe(in)) return common::Errc::invalid_argument;
    Ptr<GMimeMessage> msg(g_mime_message_new(TRUE));
    if (!add_addresses(msg.get(), GMIME_ADDRESS_TYPE_FROM, in.from) ||
        !add_addresses(msg.get(), GMIME_ADDRESS_TYPE_TO, in.to))
        return common::Errc::invalid_argument;
    g_mime_message_set_subject(msg.get(), in.subject.c_str(), "utf-8");
    auto* obj = GMIME_OBJECT(msg.get());
    std::string date = in.date.empty() ? common::rfc5322_date(std::chrono::system_clock::now()) : in.date;
    g_mime_object_set_header(obj, "Date", date.c_str(), nullptr);
    g_mime_message_set_message_id(msg.get(), (in.message_id.empty() ? new_message_id(in.from) : in.message_id).c_str());
    if (!in.in_reply_to.empty()) {
        std::string ref = "<" + in.in_reply_to + ">";
        g_mime_object_set_header(obj, "In-Reply-To", ref.c_str(), nullptr);
        g_mime_object_set_header(obj, "References", ref.c_str(), nullptr);
    }
    for (const auto& [k, v] : in.extra_headers) g_mime_object_set_header(obj, k.c_str(), v.c_str(), "utf-8");

    Ptr<GMimeObject> body = text_part("plain", in.text);
    if (!in.html.empty()) {
        Ptr<GMimeMultipart> alt(g_mime_multipart_new_with_subtype("alternative"));
        g_mime_multipart_add(alt.get(), body.get());
        auto html = text_part("html", in.html);
        g_mime_multipart_add(alt.get(), html.get());
        body.reset(GMIME_OBJECT(alt.release()));
    }
    if (!in.attachments.empty()) {
        Ptr<GMimeMultipart> mixed(g_mime_multipart_new_with_subtype("mixed"));
        g_mime_multipart_add(mixed.get(), body.get());
        for (const auto& a : in.attachments) {
            auto p = attachment_part(a);
            g_mime_multipart_add(mixed.get(), p.get());
        }
        body.reset(GMIME_OBJECT(mixed.release()));
    }
    g_mime_message_set_mime_part(msg.get(), body.get());

    GMimeFormatOptions* fo = g_mime_format_options_clone(nullptr);
    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
    Ptr<GMimeStream> out(g_mime_stream_mem_new());
    g_mime_object_write_to_stream(obj, fo, out.get());
    g_mime_format_options_free(fo);
    // Every composed message goes out through the SMTP client: its line ends are CRLF only (bare
    // CR, bare LF become CRLF) and it holds no NUL, whatever GMime made of the inputs.
    std::string bytes = detail::bytes_of(out.get());
    if (!smtp::normalise_line_ends(bytes)) return common::Errc::invalid_argument;
    return bytes;
}

}  // namespace mailward::message
