// GMime and GLib plumbing (see gmime_util.hpp).
#include "message/gmime_util.hpp"

#include <mutex>

namespace mailward::message::detail {

void init() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

Ptr<GMimeStream> stream_of(std::string_view bytes) {
    return Ptr<GMimeStream>(
        g_mime_stream_mem_new_with_buffer(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string bytes_of(GMimeStream* mem) {
    GByteArray* arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    if (!arr || arr->len == 0) return {};
    return std::string(reinterpret_cast<const char*>(arr->data), arr->len);
}

std::string decoded_content(GMimePart* part) {
    GMimeDataWrapper* dw = g_mime_part_get_content(part);
    if (!dw) return {};
    Ptr<GMimeStream> out(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(dw, out.get());
    return bytes_of(out.get());
}

std::string valid_utf8(std::string_view s) {
    if (g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr)) return std::string(s);
    gchar* fixed = g_utf8_make_valid(s.data(), static_cast<gssize>(s.size()));
    std::string out(fixed ? fixed : "");
    g_free(fixed);
    return out;
}

std::size_t boundary_lines(std::string_view bytes) {
    std::size_t n = bytes.rfind("--", 0) == 0 ? 1 : 0;
    for (std::size_t at = 0; (at = bytes.find("\n--", at)) != std::string_view::npos; at += 3) ++n;
    return n;
}

std::string to_utf8(std::string_view text, const char* charset) {
    if (text.empty()) return {};
    std::string cs = charset ? charset : "";
    for (auto& c : cs) c = static_cast<char>(g_ascii_tolower(c));
    if (cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii") return valid_utf8(text);
    // GMime knows the aliases mail uses (e.g. "latin1", "x-unknown"); fall back to ISO-8859-1.
    const char* iconv_name = g_mime_charset_iconv_name(cs.c_str());
    gsize written = 0;
    GError* err = nullptr;
    gchar* out = g_convert(text.data(), static_cast<gssize>(text.size()), "UTF-8", iconv_name ? iconv_name : cs.c_str(),
                           nullptr, &written, &err);
    if (!out) {
        if (err) g_error_free(err);
        err = nullptr;
        out = g_convert(text.data(), static_cast<gssize>(text.size()), "UTF-8", "ISO-8859-1", nullptr, &written, &err);
        if (!out) {
            if (err) g_error_free(err);
            return valid_utf8(text);
        }
    }
    std::string s(out, written);
    g_free(out);
    return valid_utf8(s);
}

}  // namespace mailward::message::detail
