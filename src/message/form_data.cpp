// multipart/form-data (see form_data.hpp): the body is given to GMime's parser as the content of a
// MIME entity with the request's Content-Type, and each part's Content-Disposition names it.
#include "message/form_data.hpp"

#include "message/gmime_util.hpp"

namespace mailward::message {

Result<std::vector<FormPart>> parse_form_data(std::string_view content_type_header, std::string_view body,
                                              std::size_t max_parts) {
    detail::init();
    std::string ct(content_type_header);
    if (ct.find_first_of("\r\n") != std::string::npos) return common::Errc::invalid_argument;
    {
        detail::Ptr<GMimeContentType> type(g_mime_content_type_parse(nullptr, ct.c_str()));
        if (!type || !g_mime_content_type_is_type(type.get(), "multipart", "form-data") ||
            !g_mime_content_type_get_parameter(type.get(), "boundary"))
            return common::Errc::invalid_argument;
    }
    // Counted before GMime parses (it would build every part first).
    if (detail::boundary_lines(body) > max_parts + 1) return common::Errc::too_large;
    std::string entity = "Content-Type: " + ct + "\r\n\r\n";
    entity.append(body);
    auto stream = detail::stream_of(entity);
    detail::Ptr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
    detail::Ptr<GMimeObject> root(g_mime_parser_construct_part(parser.get(), nullptr));
    if (!root || !GMIME_IS_MULTIPART(root.get())) return common::Errc::invalid_argument;
    auto* mp = GMIME_MULTIPART(root.get());
    int n = g_mime_multipart_get_count(mp);
    if (n < 0 || static_cast<std::size_t>(n) > max_parts) return common::Errc::too_large;
    std::vector<FormPart> out;
    for (int i = 0; i < n; ++i) {
        GMimeObject* obj = g_mime_multipart_get_part(mp, i);
        if (!GMIME_IS_PART(obj)) return common::Errc::invalid_argument;  // nested multiparts: not from a form
        const char* name = g_mime_object_get_content_disposition_parameter(obj, "name");
        if (!name || !*name) return common::Errc::invalid_argument;
        FormPart p;
        p.name = detail::valid_utf8(name);
        if (const char* f = g_mime_part_get_filename(GMIME_PART(obj))) p.filename = detail::valid_utf8(f);
        if (const char* raw = g_mime_object_get_header(obj, "Content-Type")) {
            (void)raw;
            GMimeContentType* t = g_mime_object_get_content_type(obj);
            std::string s =
                std::string(g_mime_content_type_get_media_type(t)) + "/" + g_mime_content_type_get_media_subtype(t);
            for (auto& c : s) c = static_cast<char>(g_ascii_tolower(c));
            p.content_type = s;
        }
        p.data = detail::decoded_content(GMIME_PART(obj));
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace mailward::message
