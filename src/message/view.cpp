// The reading view of a message (see view.hpp): GMime parses; this file walks the MIME tree with
// limits, picks the bodies and collects the attachments.
#include "message/view.hpp"

#include "message/gmime_util.hpp"

namespace mailward::message {
namespace {

using detail::Ptr;

class Category : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.message"; }
    std::string message(int ev) const override {
        switch (static_cast<MessageErrc>(ev)) {
            case MessageErrc::ok: return "ok";
            case MessageErrc::unparsable: return "not a message that can be parsed";
            case MessageErrc::too_many_parts: return "the message has too many MIME parts";
            case MessageErrc::too_deep: return "the message's MIME parts are nested too deeply";
        }
        return "unknown message error";
    }
};

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(g_ascii_tolower(c));
    return s;
}

std::string addresses(InternetAddressList* list) {
    if (!list || internet_address_list_length(list) == 0) return {};
    gchar* s = internet_address_list_to_string(list, nullptr, FALSE);
    std::string out = detail::valid_utf8(s ? s : "");
    g_free(s);
    return out;
}

std::string header(GMimeObject* obj, const char* name) {
    const char* v = g_mime_object_get_header(obj, name);
    if (!v) return {};
    // Raw header text may carry encoded words: decode them for people.
    gchar* decoded = g_mime_utils_header_decode_text(nullptr, v);
    std::string out = detail::valid_utf8(decoded ? decoded : v);
    g_free(decoded);
    return out;
}

struct Walker {
    const ParseLimits& limits;
    MessageView& view;
    std::size_t parts = 0;
    bool text_done = false, html_done = false;
    error_code failure;

    void attach(GMimeObject* obj, std::string data, std::string name, std::string type) {
        Attachment a;
        a.content_type = std::move(type);
        if (name.empty()) {
            std::string ext = a.content_type == "message/rfc822" ? ".eml" : ".bin";
            name = "attachment-" + std::to_string(view.attachments.size() + 1) + ext;
        }
        a.filename = sanitize_filename(name);
        a.data = std::move(data);
        if (const char* cid = g_mime_object_get_content_id(obj)) a.content_id = cid;
        const char* disp = g_mime_object_get_disposition(obj);
        a.inline_disposition = disp && g_ascii_strcasecmp(disp, "inline") == 0;
        view.attachments.push_back(std::move(a));
    }

    void walk(GMimeObject* obj, std::size_t depth) {
        if (failure) return;
        if (++parts > limits.max_parts) {
            failure = MessageErrc::too_many_parts;
            return;
        }
        if (depth > limits.max_depth) {
            failure = MessageErrc::too_deep;
            return;
        }
        if (GMIME_IS_MULTIPART(obj)) {
            auto* mp = GMIME_MULTIPART(obj);
            int n = g_mime_multipart_get_count(mp);
            for (int i = 0; i < n && !failure; ++i) walk(g_mime_multipart_get_part(mp, i), depth + 1);
            return;
        }
        GMimeContentType* ct = g_mime_object_get_content_type(obj);
        std::string type = ct ? lower(std::string(g_mime_content_type_get_media_type(ct)) + "/" +
                                      g_mime_content_type_get_media_subtype(ct))
                              : "application/octet-stream";
        if (GMIME_IS_MESSAGE_PART(obj)) {
            GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
            std::string data;
            if (inner) {
                Ptr<GMimeStream> out(g_mime_stream_mem_new());
                g_mime_object_write_to_stream(GMIME_OBJECT(inner), nullptr, out.get());
                data = detail::bytes_of(out.get());
            }
            const char* fname = g_mime_object_get_content_disposition_parameter(obj, "filename");
            attach(obj, std::move(data), fname ? fname : "message.eml", type);
            return;
        }
        if (!GMIME_IS_PART(obj)) return;
        auto* part = GMIME_PART(obj);
        const char* fname = g_mime_part_get_filename(part);
        const char* disp = g_mime_object_get_disposition(obj);
        const bool attachment = (disp && g_ascii_strcasecmp(disp, "attachment") == 0) || fname;
        if (!attachment && (type == "text/plain" || type == "text/html")) {
            bool& done = type == "text/plain" ? text_done : html_done;
            if (!done) {
                done = true;
                std::string raw = detail::decoded_content(part);
                std::string utf8 = detail::to_utf8(raw, g_mime_object_get_content_type_parameter(obj, "charset"));
                (type == "text/plain" ? view.text : view.html) = std::move(utf8);
                return;
            }
        }
        attach(obj, detail::decoded_content(part), fname ? fname : "", type);
    }
};

}  // namespace

const boost::system::error_category& message_category() noexcept {
    static const Category c;
    return c;
}

Result<MessageView> parse_message(std::string_view rfc5322, const ParseLimits& limits) {
    detail::init();
    if (rfc5322.empty()) return MessageErrc::unparsable;
    // GMime builds the whole tree before the walk below can count: refuse input with more boundary
    // lines than the limits allow first, so a hostile message cannot cost minutes and gigabytes.
    if (detail::boundary_lines(rfc5322) > 2 * limits.max_parts + 2) return MessageErrc::too_many_parts;
    auto stream = detail::stream_of(rfc5322);
    Ptr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
    Ptr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), nullptr));
    if (!msg) return MessageErrc::unparsable;

    MessageView v;
    auto* obj = GMIME_OBJECT(msg.get());
    v.from = addresses(g_mime_message_get_from(msg.get()));
    v.to = addresses(g_mime_message_get_to(msg.get()));
    v.cc = addresses(g_mime_message_get_cc(msg.get()));
    v.reply_to = addresses(g_mime_message_get_reply_to(msg.get()));
    if (const char* s = g_mime_message_get_subject(msg.get())) v.subject = detail::valid_utf8(s);
    if (const char* id = g_mime_message_get_message_id(msg.get())) v.message_id = detail::valid_utf8(id);
    v.date = header(obj, "Date");

    GMimeObject* body = g_mime_message_get_mime_part(msg.get());
    if (body) {
        Walker w{limits, v, 0, false, false, {}};
        w.walk(body, 1);
        if (w.failure) return w.failure;
    }
    return v;
}

}  // namespace mailward::message
