// The portal's pages (see pages.hpp). Plain HTML forms; no script at all, so the pages work with
// scripts disabled and a Content-Security-Policy of script-src 'none'.
#include "portal/pages.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/timefmt.hpp"
#include "portal/web.hpp"

namespace mailward::portal {
namespace {

constexpr std::string_view kStyle = R"css(
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
header{background:#0b3d91;color:#fff;padding:.75rem 1rem}
header p{margin:0;font-weight:600}
main{max-width:56rem;margin:1rem auto;padding:0 1rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;margin-bottom:1rem}
h1{font-size:1.35rem;margin:.25rem 0 .75rem}
h2{font-size:1.1rem;margin:.25rem 0 .5rem}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
input[type=text],textarea{width:100%;padding:.6rem;font:inherit;border:1px solid #8c959f;border-radius:6px}
input[inputmode=numeric]{font-size:1.4rem;letter-spacing:.3em;max-width:12rem}
button{font:inherit;padding:.6rem 1.1rem;border-radius:6px;border:1px solid #0b3d91;background:#0b3d91;color:#fff;cursor:pointer;margin-top:.5rem}
button.secondary{background:#fff;color:#0b3d91}
:focus-visible{outline:3px solid #f0b400;outline-offset:2px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;overflow-wrap:anywhere}
pre.body{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;margin:0}
iframe.body{width:100%;min-height:24rem;border:1px solid #d0d7de;border-radius:6px;background:#fff}
ul.files{padding-left:1.2rem}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .75rem}
.muted{color:#57606a;font-size:.9rem}
footer{max-width:56rem;margin:1rem auto;padding:0 1rem;color:#57606a;font-size:.85rem}
)css";

std::string layout(std::string_view title, std::string_view main_html) {
    return fmt::format(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "<title>{}</title><style>{}</style></head><body>"
        "<header><p>Secure message portal</p></header><main>{}</main>"
        "<footer>This page keeps no copy of the message on your device. Sign out when you are done.</footer>"
        "</body></html>\n",
        html_escape(title), kStyle, main_html);
}

std::string when(std::chrono::system_clock::time_point t) {
    std::string iso = common::iso8601(t);
    if (iso.size() >= 16) return iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC";
    return iso;
}

std::string code_form(std::string_view token, std::string_view csrf) {
    return fmt::format(
        "<form method=\"post\" action=\"/m/{0}/login\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"{1}\">"
        "<label for=\"code\">One-time code</label>"
        "<input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"one-time-code\" autocapitalize=\"characters\" "
        "spellcheck=\"false\" pattern=\"[0-9A-Za-z \\-]*\" maxlength=\"32\" required>"
        "<div><button type=\"submit\">Open the message</button></div></form>",
        html_escape(token), html_escape(csrf));
}

std::string send_form(std::string_view token, std::string_view csrf, std::string_view label, bool secondary) {
    return fmt::format(
        "<form method=\"post\" action=\"/m/{0}/code\"><input type=\"hidden\" name=\"csrf\" value=\"{1}\">"
        "<button type=\"submit\"{3}>{2}</button></form>",
        html_escape(token), html_escape(csrf), html_escape(label), secondary ? " class=\"secondary\"" : "");
}

}  // namespace

std::string simple_page(std::string_view title, std::string_view text) {
    return layout(title,
                  fmt::format("<div class=\"card\"><h1>{}</h1><p>{}</p></div>", html_escape(title), html_escape(text)));
}

std::string landing_page(std::string_view token, std::string_view sender_name,
                         std::chrono::system_clock::time_point expires, std::string_view csrf, bool locked) {
    std::string main = fmt::format(
        "<div class=\"card\"><h1>You have a secure message</h1>"
        "<p><strong>{}</strong> sent you a message that is kept encrypted here until {}.</p>"
        "<p>To read it, ask for a one-time code. It is sent to the address this message was for.</p>",
        html_escape(sender_name), html_escape(when(expires)));
    if (locked)
        main +=
            "<p class=\"note\" role=\"alert\">Too many wrong codes were entered. A new code you ask for now is a "
            "longer one; it works at once.</p>";
    main += send_form(token, csrf, "Send me a code", false);
    main += "</div><div class=\"card\"><h2>Already have a code?</h2>" + code_form(token, csrf) + "</div>";
    return layout("Secure message", main);
}

std::string code_page(std::string_view token, std::string_view csrf, std::string_view notice) {
    std::string main = "<div class=\"card\"><h1>Enter your one-time code</h1>";
    if (!notice.empty()) main += fmt::format("<p class=\"note\" role=\"status\">{}</p>", html_escape(notice));
    main += code_form(token, csrf);
    main +=
        "<p class=\"muted\">Codes are valid for 15 minutes and work once. No code? Check your spam folder, "
        "or ask for a new one (at most 3 in 10 minutes).</p>";
    main += send_form(token, csrf, "Send a new code", true);
    main += "</div>";
    return layout("Enter your code", main);
}

std::string message_page(const MessagePage& p) {
    const auto& v = *p.view;
    std::string main;
    if (!p.notice.empty()) main += fmt::format("<p class=\"note\" role=\"status\">{}</p>", html_escape(p.notice));
    main +=
        fmt::format("<article class=\"card\" aria-labelledby=\"subject\"><h1 id=\"subject\">{}</h1><dl class=\"meta\">",
                    html_escape(v.subject.empty() ? "(no subject)" : v.subject));
    auto row = [&main](std::string_view k, std::string_view val) {
        if (!val.empty()) main += fmt::format("<dt>{}</dt><dd>{}</dd>", k, html_escape(val));
    };
    row("From", v.from);
    row("To", v.to);
    row("Cc", v.cc);
    row("Date", v.date);
    main += fmt::format("<dt>Available until</dt><dd>{}</dd></dl></article>", html_escape(when(p.expires)));

    main += "<section class=\"card\" aria-label=\"Message\">";
    if (!p.safe_html.empty()) {
        if (p.blocked_images > 0)
            main += fmt::format("<p class=\"muted\">{} remote image(s) were not loaded, to protect your privacy.</p>",
                                p.blocked_images);
        // The message's own document: no scripts, no same origin, its own CSP; links open outside.
        std::string doc =
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" "
            "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
            "</head><body>" +
            p.safe_html + "</body></html>";
        main +=
            "<iframe class=\"body\" title=\"Message body\" sandbox=\"allow-popups allow-popups-to-escape-sandbox\" "
            "referrerpolicy=\"no-referrer\" srcdoc=\"" +
            html_escape(doc) + "\"></iframe>";
    } else {
        main += "<pre class=\"body\">" + html_escape(v.text) + "</pre>";
    }
    main += "</section>";

    // Inline images (shown in the body through their cid: URLs) are not listed as files.
    auto listed = [](const message::Attachment& a) {
        return !(a.inline_disposition && !a.content_id.empty() && a.content_type.rfind("image/", 0) == 0);
    };
    if (std::any_of(v.attachments.begin(), v.attachments.end(), listed)) {
        main +=
            "<section class=\"card\" aria-labelledby=\"attachments\"><h2 id=\"attachments\">Attachments</h2><ul "
            "class=\"files\">";
        for (std::size_t i = 0; i < v.attachments.size(); ++i) {
            const auto& a = v.attachments[i];
            if (!listed(a)) continue;
            main +=
                fmt::format("<li><a href=\"/read/att/{}\" download>{}</a> <span class=\"muted\">({} bytes)</span></li>",
                            i, html_escape(a.filename), a.data.size());
        }
        main += "</ul></section>";
    }
    if (p.can_reply) {
        main += fmt::format(
            "<section class=\"card\" aria-labelledby=\"reply\"><h2 id=\"reply\">Reply securely</h2>"
            "<form method=\"post\" action=\"/read/reply\" enctype=\"multipart/form-data\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"{0}\">"
            "<label for=\"text\">Your reply</label><textarea id=\"text\" name=\"text\" rows=\"6\" required></textarea>"
            "<label for=\"files\">Attach files (up to 10 MB in all)</label>"
            "<input type=\"file\" id=\"files\" name=\"files\" multiple>"
            "<div><button type=\"submit\">Send reply</button></div></form></section>",
            html_escape(p.csrf));
    }
    main += fmt::format(
        "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">"
        "<button type=\"submit\" class=\"secondary\">Sign out</button></form>",
        html_escape(p.csrf));
    return layout(v.subject.empty() ? "Secure message" : v.subject, main);
}

}  // namespace mailward::portal
