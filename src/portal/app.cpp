// The portal's routes (see app.hpp). Before login a form is protected by a token bound to a
// pre-session cookie and the link; after login by the session's own token; every POST also needs
// the portal's Origin. Status codes: 303 after a successful POST, 400 malformed, 401 no session,
// 403 CSRF/Origin, 404 unknown, 410 ended, 413 too large, 429 locked or reply limit, 500 store trouble,
// 503 (Retry-After) when the store cannot write: a full or read-only file system.
#include "portal/app.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include "common/metrics.hpp"
#include "escrow/service.hpp"
#include "message/form_data.hpp"
#include "message/view.hpp"
#include "portal/html_sanitizer.hpp"
#include "portal/language.hpp"
#include "portal/pages.hpp"
#include "portal/web.hpp"

namespace mailward::portal {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool is_token(std::string_view t) {
    if (t.size() != 43) return false;
    return std::all_of(t.begin(), t.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

HttpResponse html(const Ui& ui, int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.headers.push_back({"Content-Type", "text/html; charset=utf-8"});
    r.headers.push_back({"Content-Language", std::string(escrow::tag(ui.lang))});
    r.headers.push_back({"Vary", "Accept-Language"});
    r.headers.push_back({"Content-Security-Policy", std::string(kPageCsp)});
    r.body = std::move(body);
    return r;
}

HttpResponse page(const Ui& ui, int status, const escrow::PageText& p) { return html(ui, status, simple_page(ui, p)); }

HttpResponse see_other(std::string location) {
    HttpResponse r;
    r.status = 303;
    r.headers.push_back({"Location", std::move(location)});
    r.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    return r;
}

// 500 for store trouble; 503 with Retry-After when the store cannot write (a full or read-only
// file system): the request can succeed later as it is.
HttpResponse trouble(const Ui& ui, const error_code& ec = {}) {
    if (ec == common::Errc::storage_full) {
        auto r = page(ui, 503, ui.t().unavailable);
        r.headers.push_back({"Retry-After", "120"});
        return r;
    }
    return page(ui, 500, ui.t().trouble);
}

struct Form {
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<message::FormPart> files;
    std::string get(std::string_view name) const {
        for (const auto& [k, v] : fields)
            if (k == name) return v;
        return {};
    }
};

// application/x-www-form-urlencoded, or multipart/form-data where files are expected (the reply
// form only: multipart is parsed only after the session is known); nullopt when malformed.
std::optional<Form> read_form(const HttpRequest& req, bool multipart_allowed) {
    Form f;
    auto ct = lower(req.header("content-type").value_or(""));
    if (ct.rfind("multipart/form-data", 0) == 0) {
        if (!multipart_allowed) return std::nullopt;
        auto parts = message::parse_form_data(req.header("content-type").value_or(""), req.body);
        if (!parts) return std::nullopt;
        for (auto& p : *parts) {
            if (!p.filename.empty()) f.files.push_back(std::move(p));
            else f.fields.emplace_back(p.name, std::move(p.data));
        }
        return f;
    }
    if (ct.rfind("application/x-www-form-urlencoded", 0) == 0 || ct.empty()) {
        auto fields = parse_urlencoded(req.body);
        if (!fields) return std::nullopt;
        f.fields = std::move(*fields);
        return f;
    }
    return std::nullopt;
}

escrow::Client client_of(const HttpRequest& req) {
    return escrow::Client{req.remote_address, req.header("user-agent").value_or("")};
}

// RFC 6266: an ASCII fallback name and the UTF-8 name (RFC 8187 encoding).
std::string content_disposition(std::string_view name) {
    std::string ascii, ext;
    for (unsigned char c : name) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                     c == '-' || c == '_';
        ascii += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? static_cast<char>(c) : '_';
        if (plain) {
            ext += static_cast<char>(c);
        } else {
            static const char* hex = "0123456789ABCDEF";
            ext += '%';
            ext += hex[c >> 4];
            ext += hex[c & 15];
        }
    }
    return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + ext;
}

// Inline images of the message itself (multipart/related, "cid:" URLs) as data: URLs, which the
// message's CSP allows; nothing is fetched. Only raster types, at most 2 MiB each.
void inline_images(std::string& html, const message::MessageView& view) {
    for (const auto& a : view.attachments) {
        if (a.content_id.empty() || a.data.size() > (2u << 20)) continue;
        if (a.content_type != "image/png" && a.content_type != "image/gif" && a.content_type != "image/jpeg" &&
            a.content_type != "image/webp")
            continue;
        const std::string needle = "src=\"cid:" + html_escape(a.content_id) + "\"";
        if (html.find(needle) == std::string::npos) continue;
        std::string b64(sodium_base64_ENCODED_LEN(a.data.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
        sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(a.data.data()), a.data.size(),
                          sodium_base64_VARIANT_ORIGINAL);
        b64.resize(std::strlen(b64.c_str()));
        const std::string url = "src=\"data:" + a.content_type + ";base64," + b64 + "\"";
        for (std::size_t at = 0; (at = html.find(needle, at)) != std::string::npos; at += url.size())
            html.replace(at, needle.size(), url);
    }
}

std::string cookie(const HttpRequest& req, std::string_view name) {
    auto c = parse_cookies(req.header("cookie").value_or(""));
    auto it = c.find(std::string(name));
    return it == c.end() ? std::string() : it->second;
}

// Every POST: from the portal's own pages (a cross-site form cannot forge either header). With
// Referrer-Policy: no-referrer, browsers send "Origin: null" for a form post (Fetch standard,
// serializing a request origin); then Sec-Fetch-Site, which pages cannot set, must say same-origin.
bool same_origin(const HttpRequest& req, const std::string& portal_origin) {
    auto origin = req.header("origin");
    return origin && *origin != "null" ? lower(*origin) == portal_origin
                                       : req.header("sec-fetch-site").value_or("") == "same-origin";
}

HttpResponse foreign_origin(const Ui& ui) { return page(ui, 403, ui.t().refused_origin); }

HttpResponse signed_out(const Ui& ui) { return page(ui, 401, ui.t().signed_out); }

std::string megabytes(std::size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MB"; }

HttpResponse reply_too_large(const Ui& ui, std::size_t max_reply_size) {
    const auto& t = ui.t().reply_too_large;
    return html(ui, 413, simple_page(ui, t.title, escrow::fill(t.text, {{"size", megabytes(max_reply_size)}})));
}

// A reply a limit refused: 429 with Retry-After while a window is full, 413 once the message's
// replies have used up their total size.
HttpResponse reply_refused(const Ui& ui, const escrow::ReplyDecision& d) {
    if (d.verdict == escrow::ReplyVerdict::total_exhausted) return page(ui, 413, ui.t().reply_total);
    const auto minutes = (d.retry_after.count() + 59) / 60;
    const auto& t = ui.t();
    auto r = html(ui, 429,
                  simple_page(ui, t.reply_rate.title,
                              minutes == 1 ? std::string(t.reply_rate_one_minute)
                                           : escrow::fill(t.reply_rate.text, {{"minutes", std::to_string(minutes)}})));
    r.headers.push_back({"Retry-After", std::to_string(d.retry_after.count())});
    return r;
}

// The body size a request's header declares; nullopt without Content-Length (chunked, or none).
std::optional<std::size_t> declared_length(const HttpRequest& req) {
    auto v = req.header("content-length");
    if (!v) return std::nullopt;
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec == std::errc::result_out_of_range) return std::numeric_limits<std::size_t>::max();
    if (ec != std::errc() || p != v->data() + v->size()) return std::nullopt;  // the server refused it already
    return n;
}

// ---- the route table ----

// What a request passes before its route's handler runs, by the part of the portal its path is in.
enum class Area {
    open,     // "/" and any path outside the others: the route, or 404
    link,     // "/m/...": a well-formed link (else 404) and the route's method (else 405 with Allow);
              // a POST then its form and the pre-login CSRF token
    session,  // "/read", "/read/...", "/logout": a live session (else 401); a POST then its form and
              // the session's CSRF token, a GET the message itself; then the route, or 404
};

// How a route's body is admitted (Portal::admission, from the header alone) and read.
enum class Body {
    none,   // GET and HEAD: no body
    form,   // a small form: at most max_form_size
    reply,  // multipart with files: at most max_reply_size plus framing, and only for a live session
            // with room in its reply limits (so its admission needs the store, on the pool)
};

// One request on its way to its handler: the pattern's capture and what its area established.
struct Call {
    escrow::EscrowService& service;
    const PortalSettings& settings;
    const Ui ui;
    const HttpRequest& req;
    TimePoint now;
    escrow::Client client;
    std::string_view capture = {};                    // the pattern's {token} or {rest}
    std::string pre = {};                             // link: the pre-session cookie
    std::string expected = {};                        // link, POST: the pre-login CSRF token
    std::optional<escrow::SessionInfo> session = {};  // session
    Form form = {};                                   // POST: the form
    std::optional<message::MessageView> view = {};    // session, GET: the message
};

struct Route {
    std::string_view method;   // "GET" (HEAD too) or "POST"
    std::string_view pattern;  // {token}: a link token; {rest}: the rest of the path; [/]: an optional final "/"
    Area area;
    Body body;
    HttpResponse (*handler)(Call&);
};

std::size_t body_limit(Body body, const PortalSettings& s) {
    switch (body) {
        case Body::none: return 0;
        case Body::form: return s.max_form_size;
        case Body::reply: return s.max_reply_size + kReplyFraming;
    }
    return 0;
}

HttpResponse too_large(const Ui& ui, Body body, const PortalSettings& s) {
    if (body == Body::reply) return reply_too_large(ui, s.max_reply_size);
    return page(ui, 413, ui.t().request_too_large);
}

HttpResponse not_found(const Ui& ui) { return page(ui, 404, ui.t().not_found); }

HttpResponse link_not_valid(const Ui& ui) { return page(ui, 404, ui.t().link_not_valid); }

HttpResponse not_allowed(const Ui& ui) { return page(ui, 405, ui.t().not_allowed); }

// ---- the handlers ----

HttpResponse home(Call& c) { return page(c.ui, 200, c.ui.t().home); }

// GET /brand/logo: [branding] logo_file, read at start; mail clients load it from other origins.
HttpResponse logo(Call& c) {
    if (c.settings.logo.empty()) return not_found(c.ui);
    HttpResponse r;
    r.status = 200;
    r.headers.push_back({"Content-Type", c.settings.logo_type});
    r.headers.push_back({"Cache-Control", "public, max-age=604800"});
    r.headers.push_back({"Cross-Origin-Resource-Policy", "cross-origin"});
    r.headers.push_back({"Content-Security-Policy", "default-src 'none'; sandbox"});
    r.body = c.settings.logo;
    return r;
}

// GET /m/TOKEN: shows only (link scanners consume nothing).
HttpResponse link_page(Call& c) {
    const std::string token(c.capture);
    auto info = c.service.open_link(token, c.client, c.now);
    if (!info) {
        if (info.error() == common::Errc::not_found) return link_not_valid(c.ui);
        return trouble(c.ui, info.error());
    }
    if (info->state != store::EscrowState::active || c.now >= info->expires) return page(c.ui, 410, c.ui.t().gone);
    if (auto s = c.service.session(cookie(c.req, kSessionCookie), c.now); s && s->record.id == info->escrow_id)
        return see_other("/read");
    bool fresh = !is_token(c.pre);
    if (fresh) c.pre = escrow::EscrowService::random_token();
    auto r = html(c.ui, 200,
                  landing_page(c.ui, token, info->sender_name, info->expires, c.service.pre_login_csrf(c.pre, token),
                               info->locked));
    if (fresh) r.headers.push_back({"Set-Cookie", host_cookie(kPreCookie, c.pre, {std::chrono::seconds(3600)})});
    return r;
}

// POST /m/TOKEN/code: the same page whether a code was sent, the limit was reached or the link is unknown.
HttpResponse send_code(Call& c) {
    const std::string token(c.capture);
    auto sent = c.service.request_code(token, c.client, c.now);
    if (!sent) return trouble(c.ui, sent.error());
    return html(c.ui, 200, code_page(c.ui, token, c.expected, c.ui.t().code_on_way));
}

// The logins' metrics: every attempt by result, and the ones a lockout refused.
void count_login(std::string_view result) {
    common::metrics::inc(
        "mailward_portal_logins_total",
        "Portal sign-ins with a code, by result (accepted, wrong, no_code, exhausted, locked, capped).", "result",
        result);
    if (result == "exhausted" || result == "locked" || result == "capped")
        common::metrics::inc("mailward_portal_lockouts_total", "Portal sign-ins refused by a lockout, by kind.", "kind",
                             result);
}

// POST /m/TOKEN/login
HttpResponse login(Call& c) {
    const std::string token(c.capture);
    auto out = c.service.login(token, c.form.get("code"), c.client, c.now);
    count_login(out ? store::to_string(out->check) : (out.error() == common::Errc::not_found ? "not_found" : "error"));
    if (!out) {
        if (out.error() == common::Errc::not_found)
            return html(c.ui, 200, code_page(c.ui, token, c.expected, c.ui.t().code_not_accepted));
        return trouble(c.ui, out.error());
    }
    switch (out->check) {
        case store::CodeCheck::accepted: {
            auto r = see_other("/read");
            // A new session id at every login (no fixation); the pre-session cookie is done.
            r.headers.push_back({"Set-Cookie", host_cookie(kSessionCookie, out->session_cookie)});
            r.headers.push_back({"Set-Cookie", host_cookie(kPreCookie, "", {std::chrono::seconds(0), true})});
            return r;
        }
        case store::CodeCheck::wrong:
        case store::CodeCheck::no_code:
            return html(c.ui, 200, code_page(c.ui, token, c.expected, c.ui.t().code_not_accepted_hint));
        case store::CodeCheck::exhausted:
            return html(c.ui, 429, code_page(c.ui, token, c.expected, c.ui.t().code_exhausted));
        case store::CodeCheck::locked:
        case store::CodeCheck::capped:
            // Locked for short codes only: a new code requested now is a long one, sent to the
            // message's address, and works at once (anyone with the link cannot lock the
            // recipient out; see docs/operations.md "One-time codes").
            return html(c.ui, 429, code_page(c.ui, token, c.expected, c.ui.t().code_locked));
    }
    return trouble(c.ui);
}

// GET /read
HttpResponse show_message(Call& c) {
    const auto& s = *c.session;
    (void)c.service.record(s, store::escrow_event::viewed, c.client, "", c.now);
    MessagePage mp;
    mp.view = &*c.view;
    if (!c.view->html.empty()) {
        auto clean = sanitize_html(c.view->html);
        mp.safe_html = std::move(clean.html);
        mp.blocked_images = clean.report.blocked_images;
        inline_images(mp.safe_html, *c.view);
        if (clean.report.refused) mp.notice = std::string(c.ui.t().too_complex);
    }
    mp.csrf = s.csrf;
    mp.expires = s.record.expires;
    mp.can_reply = !s.record.sender.empty();
    if (c.req.query == "sent=1") mp.notice = std::string(c.ui.t().reply_sent);
    return html(c.ui, 200, message_page(c.ui, mp));
}

// GET /read/att/N: never rendered by the browser, a download whatever the part claimed to be.
HttpResponse attachment(Call& c) {
    std::string_view n = c.capture;
    std::size_t index = 0;
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), index);
    if (ec != std::errc() || p != n.data() + n.size() || index >= c.view->attachments.size())
        return page(c.ui, 404, c.ui.t().no_attachment);
    const auto& a = c.view->attachments[index];
    (void)c.service.record(*c.session, store::escrow_event::attachment_downloaded, c.client, a.filename, c.now);
    HttpResponse r;
    r.status = 200;
    r.headers.push_back({"Content-Type", "application/octet-stream"});
    r.headers.push_back({"Content-Disposition", content_disposition(a.filename)});
    r.headers.push_back({"Content-Security-Policy", "default-src 'none'; sandbox"});
    r.body = a.data;
    return r;
}

// POST /read/reply
HttpResponse send_reply(Call& c) {
    escrow::ReplyInput in;
    in.text = c.form.get("text");
    for (auto& f : c.form.files) {
        if (f.data.empty()) continue;  // an empty file input
        message::Attachment a;
        a.filename = message::sanitize_filename(f.filename);
        a.content_type = f.content_type.empty() ? "application/octet-stream" : lower(f.content_type);
        a.data = std::move(f.data);
        in.attachments.push_back(std::move(a));
    }
    if (in.text.empty() && in.attachments.empty()) return page(c.ui, 400, c.ui.t().empty_reply);
    auto q = c.service.reply(*c.session, in, c.client, c.now);
    if (!q) {
        if (q.error() == common::Errc::too_large) return reply_too_large(c.ui, c.settings.max_reply_size);
        if (q.error() == common::Errc::invalid_argument) return page(c.ui, 400, c.ui.t().no_reply_possible);
        return trouble(c.ui, q.error());
    }
    if (q->limit.verdict != escrow::ReplyVerdict::allowed) return reply_refused(c.ui, q->limit);
    return see_other("/read?sent=1");
}

// POST /logout
HttpResponse logout(Call& c) {
    if (auto r = c.service.logout(*c.session, c.client, c.now); !r) return trouble(c.ui, r.error());
    auto r = page(c.ui, 200, c.ui.t().signed_out_done);
    r.headers.push_back({"Set-Cookie", host_cookie(kSessionCookie, "", {std::chrono::seconds(0), true})});
    return r;
}

// Every route: routing (Portal::route) and admission (Portal::admission) both read this table.
constexpr Route kRoutes[] = {
    {"GET", "/", Area::open, Body::none, home},
    {"GET", "/brand/logo", Area::open, Body::none, logo},
    {"GET", "/m/{token}[/]", Area::link, Body::none, link_page},
    {"POST", "/m/{token}/code", Area::link, Body::form, send_code},
    {"POST", "/m/{token}/login", Area::link, Body::form, login},
    {"GET", "/read", Area::session, Body::none, show_message},
    {"GET", "/read/att/{rest}", Area::session, Body::none, attachment},
    {"POST", "/read/reply", Area::session, Body::reply, send_reply},
    {"POST", "/logout", Area::session, Body::form, logout},
};

// The path against a pattern: its capture ("" without one), or nullopt.
std::optional<std::string_view> match(std::string_view pattern, std::string_view path) {
    if (pattern.ends_with("[/]")) {
        pattern.remove_suffix(3);
        if (path.ends_with('/')) path.remove_suffix(1);
    }
    const auto open = pattern.find('{');
    if (open == std::string_view::npos) {
        if (pattern != path) return std::nullopt;
        return std::string_view();
    }
    const auto close = pattern.find('}', open);
    const auto prefix = pattern.substr(0, open), name = pattern.substr(open + 1, close - open - 1),
               suffix = pattern.substr(close + 1);
    if (path.size() < prefix.size() + suffix.size() || !path.starts_with(prefix) || !path.ends_with(suffix))
        return std::nullopt;
    const auto capture = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    if (name == "token" && !is_token(capture)) return std::nullopt;
    return capture;  // {rest}: anything, the handler reads it
}

struct Match {
    const Route* route = nullptr;  // none for this method and path
    std::string_view capture;
};

Match find_route(std::string_view method, std::string_view path) {
    if (method == "HEAD") method = "GET";
    for (const auto& r : kRoutes)
        if (r.method == method)
            if (auto capture = match(r.pattern, path)) return {&r, *capture};
    return {};
}

// A route's path exactly, or a path below the first segment of a route that has more ("/m/...",
// "/read/..."), is in that route's area; any other path is open.
Area area_of(std::string_view path) {
    for (const auto& r : kRoutes)
        if (match(r.pattern, path)) return r.area;
    for (const auto& r : kRoutes)
        if (auto second = r.pattern.find('/', 1);
            second != std::string_view::npos && path.starts_with(r.pattern.substr(0, second + 1)))
            return r.area;
    return Area::open;
}

// The body rule of a request's route; an unknown POST is read as a form (and answered 404).
Body body_of(const HttpRequest& req) {
    if (auto m = find_route(req.method, req.path); m.route) return m.route->body;
    return req.method == "POST" ? Body::form : Body::none;
}

// ---- the areas ----

HttpResponse enter_link(Call& c, Match m) {
    if (!m.route) {
        // The link and its action are checked before the method: 404, or 405 naming the methods it has.
        std::string allow;
        for (const auto& r : kRoutes)
            if (r.area == Area::link && match(r.pattern, c.req.path))
                allow +=
                    std::string(allow.empty() ? "" : ", ") + (r.method == "GET" ? "GET, HEAD" : std::string(r.method));
        if (allow.empty()) return link_not_valid(c.ui);
        auto r = not_allowed(c.ui);
        r.headers.push_back({"Allow", allow});
        return r;
    }
    c.pre = cookie(c.req, kPreCookie);
    if (m.route->body != Body::none) {
        // The forms before sign-in are a token and a code: a large body is not one of them.
        if (c.req.body.size() > body_limit(m.route->body, c.settings))
            return too_large(c.ui, m.route->body, c.settings);
        auto form = read_form(c.req, m.route->body == Body::reply);
        if (!form) return page(c.ui, 400, c.ui.t().bad_request);
        c.form = std::move(*form);
        const std::string token(c.capture);
        c.expected = is_token(c.pre) ? c.service.pre_login_csrf(c.pre, token) : std::string();
        if (c.expected.empty() || !constant_time_equal(c.form.get("csrf"), c.expected))
            return page(c.ui, 403, c.ui.t().form_expired_link);
    }
    return m.route->handler(c);
}

HttpResponse enter_session(Call& c, Match m) {
    auto s = c.service.session(cookie(c.req, kSessionCookie), c.now);
    if (!s) {
        if (s.error() != common::Errc::not_found) return trouble(c.ui);
        return signed_out(c.ui);
    }
    c.session = std::move(*s);
    if (c.req.method == "POST") {
        // For multipart bodies the token is a form field like any other.
        auto form = read_form(c.req, m.route && m.route->body == Body::reply);
        if (!form) return page(c.ui, 400, c.ui.t().bad_request);
        c.form = std::move(*form);
        if (!constant_time_equal(c.form.get("csrf"), c.session->csrf))
            return page(c.ui, 403, c.ui.t().form_expired_session);
        return m.route ? m.route->handler(c) : not_found(c.ui);
    }
    if (c.req.method != "GET" && c.req.method != "HEAD") return not_allowed(c.ui);
    auto raw = c.service.read(*c.session);
    if (!raw) return trouble(c.ui);
    auto view = message::parse_message(*raw);
    if (!view) return page(c.ui, 500, c.ui.t().unreadable);
    c.view = std::move(*view);
    return m.route ? m.route->handler(c) : not_found(c.ui);
}

}  // namespace

std::string origin_of(std::string_view url) {
    std::string u = lower(url);
    std::string scheme;
    if (u.rfind("https://", 0) == 0) scheme = "https";
    else if (u.rfind("http://", 0) == 0) scheme = "http";
    else return {};
    std::string rest = u.substr(scheme.size() + 3);
    auto end = rest.find_first_of("/?#");
    std::string host = rest.substr(0, end);
    if (host.empty() || host.find('@') != std::string::npos) return {};
    if (scheme == "https" && host.size() > 4 && host.ends_with(":443")) host.resize(host.size() - 4);
    if (scheme == "http" && host.size() > 3 && host.ends_with(":80")) host.resize(host.size() - 3);
    return scheme + "://" + host;
}

std::size_t max_body_size(const PortalSettings& s) {
    return std::max(s.max_form_size, s.max_reply_size + kReplyFraming);
}

Portal::Portal(escrow::EscrowService& service, boost::asio::thread_pool& pool, PortalSettings settings)
    : service_(service), pool_(pool), settings_(std::move(settings)) {}

void Portal::admit(HttpRequest req, Admit admit) {
    if (body_of(req) != Body::reply) {
        admit(admission(req, std::chrono::system_clock::now()));
        return;
    }
    boost::asio::post(pool_, [this, req = std::move(req), admit = std::move(admit)]() mutable {
        Admission a;
        try {
            a = admission(req, std::chrono::system_clock::now());
        } catch (const std::exception& e) {
            spdlog::error("portal: {} {}: {}", req.method, req.path, e.what());
            a.refuse = trouble(ui_for(req));
        }
        admit(std::move(a));
    });
}

Admission Portal::admission(const HttpRequest& req, TimePoint now) {
    if (req.method != "POST") return {std::nullopt, 0};  // GET and HEAD carry no body here
    const Ui ui = ui_for(req);
    if (!same_origin(req, settings_.origin)) return {foreign_origin(ui), 0};
    const Body body = body_of(req);
    const std::size_t limit = body_limit(body, settings_);
    if (auto n = declared_length(req); n && *n > limit) return {too_large(ui, body, settings_), 0};
    if (body != Body::reply) return {std::nullopt, limit};
    // The reply's body (files) is read only for a live session with room in its reply limits.
    auto s = service_.session(cookie(req, kSessionCookie), now);
    if (!s) return {s.error() == common::Errc::not_found ? signed_out(ui) : trouble(ui), 0};
    auto quota = service_.reply_allowed(*s, 0, now);
    if (!quota) return {trouble(ui), 0};
    if (quota->verdict != escrow::ReplyVerdict::allowed) return {reply_refused(ui, *quota), 0};
    return {std::nullopt, limit};
}

void Portal::handle(HttpRequest req, Respond respond) {
    boost::asio::post(pool_, [this, req = std::move(req), respond = std::move(respond)]() mutable {
        HttpResponse r;
        try {
            r = route(req, std::chrono::system_clock::now());
        } catch (const std::exception& e) {
            spdlog::error("portal: {} {}: {}", req.method, req.path, e.what());
            r = trouble(ui_for(req));
        }
        respond(std::move(r));
    });
}

HttpResponse Portal::route(const HttpRequest& req, TimePoint now) {
    // Every POST: from the portal's own pages (admission() checked it too, before the body).
    const Ui ui = ui_for(req);
    if (req.method == "POST" && !same_origin(req, settings_.origin)) return foreign_origin(ui);
    const auto m = find_route(req.method, req.path);
    Call call{service_, settings_, ui, req, now, client_of(req), m.capture};
    switch (area_of(req.path)) {
        case Area::link: return enter_link(call, m);
        case Area::session: return enter_session(call, m);
        case Area::open: break;
    }
    return m.route ? m.route->handler(call) : not_found(ui);
}

Ui Portal::ui_for(const HttpRequest& req) const {
    return Ui{choose_language(req.header("accept-language")), &settings_.brand};
}

}  // namespace mailward::portal
