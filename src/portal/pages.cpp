// The portal's pages (see pages.hpp). Plain HTML forms; no script at all, so the pages work with
// scripts disabled and a Content-Security-Policy of script-src 'none'.
#include "portal/pages.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/timefmt.hpp"
#include "portal/web.hpp"

namespace mailward::portal {
namespace {

constexpr std::string_view kLogoPathHtml = escrow::kLogoPath;  // a constant path: nothing to escape

constexpr std::string_view kStyle = R"css(
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
header{background:var(--brand);color:#fff;padding:.75rem 1rem;display:flex;align-items:center;gap:.75rem}
header p{margin:0}header .org{font-weight:700}header .app{font-size:.9rem;opacity:.9}
header img{height:40px;max-width:10rem;background:#fff;border-radius:4px;padding:2px}
main{max-width:56rem;margin:1rem auto;padding:0 1rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;margin-bottom:1rem}
h1{font-size:1.35rem;margin:.25rem 0 .75rem}
h2{font-size:1.1rem;margin:.25rem 0 .5rem}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
input[type=text],textarea{width:100%;padding:.6rem;font:inherit;border:1px solid #8c959f;border-radius:6px}
input[inputmode=numeric]{font-size:1.4rem;letter-spacing:.3em;max-width:12rem}
button{font:inherit;padding:.6rem 1.1rem;border-radius:6px;border:1px solid var(--brand);background:var(--brand);color:#fff;cursor:pointer;margin-top:.5rem}
button.secondary{background:#fff;color:var(--brand)}
:focus-visible{outline:3px solid #f0b400;outline-offset:2px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;overflow-wrap:anywhere}
pre.body{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;margin:0}
iframe.body{width:100%;min-height:24rem;border:1px solid #d0d7de;border-radius:6px;background:#fff}
ul.files{padding-left:1.2rem}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .75rem}
.muted{color:#57606a;font-size:.9rem}
footer{max-width:56rem;margin:1rem auto;padding:0 1rem;color:#57606a;font-size:.85rem}
footer .nopw{color:#1f2328;font-weight:600;border-left:4px solid var(--brand);padding-left:.5rem}
)css";

const escrow::Brand& brand_of(const Ui& ui) {
    static const escrow::Brand defaults;
    return ui.brand ? *ui.brand : defaults;
}

std::string layout(const Ui& ui, std::string_view title, std::string_view main_html) {
    const auto& b = brand_of(ui);
    const auto& t = ui.t();
    const std::string org = html_escape(b.organization);
    std::string logo;
    if (b.has_logo) logo = fmt::format("<img src=\"{}\" alt=\"\">", kLogoPathHtml);
    std::string support;
    if (!b.support_contact.empty())
        support = fmt::format("<p>{} <a href=\"{}\">{}</a></p>", escrow::fill(html_escape(t.support), {{"org", org}}),
                              html_escape(escrow::support_href(b.support_contact)), html_escape(b.support_contact));
    return fmt::format(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "<title>{} - {}</title><style>:root{{--brand:{}}}{}</style></head><body>"
        "<header>{}<div><p class=\"org\">{}</p><p class=\"app\">{}</p></div></header><main>{}</main>"
        "<footer><p class=\"nopw\">{}</p>{}<p>{}</p></footer>"
        "</body></html>\n",
        escrow::tag(ui.lang), html_escape(title), org, html_escape(b.color), kStyle, logo, org,
        html_escape(t.portal_name), main_html, escrow::fill(html_escape(t.never_password_portal), {{"org", org}}),
        support, html_escape(t.footer));
}

std::string when(std::chrono::system_clock::time_point t) {
    std::string iso = common::iso8601(t);
    if (iso.size() >= 16) return iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC";
    return iso;
}

std::string code_form(const Ui& ui, std::string_view token, std::string_view csrf) {
    return fmt::format(
        "<form method=\"post\" action=\"/m/{0}/login\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"{1}\">"
        "<label for=\"code\">{2}</label>"
        "<input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"one-time-code\" autocapitalize=\"characters\" "
        "spellcheck=\"false\" pattern=\"[0-9A-Za-z \\-]*\" maxlength=\"32\" required>"
        "<div><button type=\"submit\">{3}</button></div></form>",
        html_escape(token), html_escape(csrf), html_escape(ui.t().code_label), html_escape(ui.t().open_button));
}

std::string send_form(std::string_view token, std::string_view csrf, std::string_view label, bool secondary) {
    return fmt::format(
        "<form method=\"post\" action=\"/m/{0}/code\"><input type=\"hidden\" name=\"csrf\" value=\"{1}\">"
        "<button type=\"submit\"{3}>{2}</button></form>",
        html_escape(token), html_escape(csrf), html_escape(label), secondary ? " class=\"secondary\"" : "");
}

}  // namespace

std::string simple_page(const Ui& ui, std::string_view title, std::string_view text) {
    return layout(ui, title,
                  fmt::format("<div class=\"card\"><h1>{}</h1><p>{}</p></div>", html_escape(title), html_escape(text)));
}

std::string simple_page(const Ui& ui, const escrow::PageText& p) { return simple_page(ui, p.title, p.text); }

std::string landing_page(const Ui& ui, std::string_view token, std::string_view sender_name,
                         std::chrono::system_clock::time_point expires, std::string_view csrf, bool locked) {
    const auto& t = ui.t();
    std::string main = fmt::format(
        "<div class=\"card\"><h1>{}</h1><p>{}</p><p>{}</p>", html_escape(t.landing_h1),
        escrow::fill(html_escape(t.landing_text), {{"sender", "<strong>" + html_escape(sender_name) + "</strong>"},
                                                   {"until", html_escape(when(expires))}}),
        html_escape(t.landing_code_text));
    if (locked) main += "<p class=\"note\" role=\"alert\">" + html_escape(t.landing_locked) + "</p>";
    main += send_form(token, csrf, t.send_code, false);
    main +=
        "</div><div class=\"card\"><h2>" + html_escape(t.have_code) + "</h2>" + code_form(ui, token, csrf) + "</div>";
    return layout(ui, t.landing_title, main);
}

std::string code_page(const Ui& ui, std::string_view token, std::string_view csrf, std::string_view notice) {
    const auto& t = ui.t();
    std::string main = "<div class=\"card\"><h1>" + html_escape(t.code_h1) + "</h1>";
    if (!notice.empty()) main += fmt::format("<p class=\"note\" role=\"status\">{}</p>", html_escape(notice));
    main += code_form(ui, token, csrf);
    main += "<p class=\"muted\">" + html_escape(t.code_help) + "</p>";
    main += send_form(token, csrf, t.send_new_code, true);
    main += "</div>";
    return layout(ui, t.code_title, main);
}

std::string message_page(const Ui& ui, const MessagePage& p) {
    const auto& t = ui.t();
    const auto& v = *p.view;
    std::string main;
    if (!p.notice.empty()) main += fmt::format("<p class=\"note\" role=\"status\">{}</p>", html_escape(p.notice));
    main +=
        fmt::format("<article class=\"card\" aria-labelledby=\"subject\"><h1 id=\"subject\">{}</h1><dl class=\"meta\">",
                    html_escape(v.subject.empty() ? t.no_subject : std::string_view(v.subject)));
    auto row = [&main](std::string_view k, std::string_view val) {
        if (!val.empty()) main += fmt::format("<dt>{}</dt><dd>{}</dd>", html_escape(k), html_escape(val));
    };
    row(t.from, v.from);
    row(t.to, v.to);
    row(t.cc, v.cc);
    row(t.date, v.date);
    main += fmt::format("<dt>{}</dt><dd>{}</dd></dl></article>", html_escape(t.available_until),
                        html_escape(when(p.expires)));

    main += "<section class=\"card\" aria-label=\"" + html_escape(t.message_label) + "\">";
    if (!p.safe_html.empty()) {
        if (p.blocked_images > 0)
            main += "<p class=\"muted\">" +
                    escrow::fill(html_escape(t.images_blocked), {{"count", std::to_string(p.blocked_images)}}) + "</p>";
        // The message's own document: no scripts, no same origin, its own CSP; links open outside.
        std::string doc =
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" "
            "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
            "</head><body>" +
            p.safe_html + "</body></html>";
        main += "<iframe class=\"body\" title=\"" + html_escape(t.message_body_title) +
                "\" sandbox=\"allow-popups allow-popups-to-escape-sandbox\" "
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
        main += "<section class=\"card\" aria-labelledby=\"attachments\"><h2 id=\"attachments\">" +
                html_escape(t.attachments) + "</h2><ul class=\"files\">";
        for (std::size_t i = 0; i < v.attachments.size(); ++i) {
            const auto& a = v.attachments[i];
            if (!listed(a)) continue;
            main += fmt::format("<li><a href=\"/read/att/{}\" download>{}</a> <span class=\"muted\">{}</span></li>", i,
                                html_escape(a.filename),
                                escrow::fill(html_escape(t.bytes), {{"count", std::to_string(a.data.size())}}));
        }
        main += "</ul></section>";
    }
    if (p.can_reply) {
        main += fmt::format(
            "<section class=\"card\" aria-labelledby=\"reply\"><h2 id=\"reply\">{1}</h2>"
            "<form method=\"post\" action=\"/read/reply\" enctype=\"multipart/form-data\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"{0}\">"
            "<label for=\"text\">{2}</label><textarea id=\"text\" name=\"text\" rows=\"6\" required></textarea>"
            "<label for=\"files\">{3}</label>"
            "<input type=\"file\" id=\"files\" name=\"files\" multiple>"
            "<div><button type=\"submit\">{4}</button></div></form></section>",
            html_escape(p.csrf), html_escape(t.reply_heading), html_escape(t.reply_label), html_escape(t.attach_label),
            html_escape(t.send_reply));
    }
    main += fmt::format(
        "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">"
        "<button type=\"submit\" class=\"secondary\">{}</button></form>",
        html_escape(p.csrf), html_escape(t.sign_out));
    return layout(ui, v.subject.empty() ? t.landing_title : std::string_view(v.subject), main);
}

}  // namespace mailward::portal
