// The portal application: the recipients' routes over escrow::EscrowService.
//   GET  /brand/logo       [branding] logo_file (the mails load it too)
//   GET  /m/TOKEN          the link's page; shows only (link scanners consume nothing)
//   POST /m/TOKEN/code     sends a one-time code (the same answer whatever happens)
//   POST /m/TOKEN/login    checks the code; a new session cookie on success
//   GET  /read             the message (text, sanitized HTML in a sandboxed iframe, attachments)
//   GET  /read/att/N       an attachment, as a download
//   POST /read/reply       a secure reply (multipart/form-data, files allowed)
//   POST /logout           ends the session
// Every POST needs the page's CSRF token and an Origin header equal to the portal's origin (or,
// when a browser sends Origin: null under no-referrer, Sec-Fetch-Site: same-origin).
// Before any body is read, admission() sees the header: every form's body is small
// (max_form_size), the reply's may hold files (max_reply_size plus multipart framing); a reply
// needs a live session and room in its reply limits first (401, 429 with Retry-After, 413).
// Requests are untrusted; route() blocks (store, crypto, GMime), handle() runs it on a pool.
// Every page is in the language the request's Accept-Language picks (portal/language.hpp), with
// Content-Language, and carries the brand.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "escrow/brand.hpp"
#include "portal/pages.hpp"
#include "portal/web.hpp"

namespace boost::asio {
class thread_pool;
}
namespace mailward::escrow {
class EscrowService;
}

namespace mailward::portal {

inline constexpr std::string_view kSessionCookie = "__Host-mwsid";
inline constexpr std::string_view kPreCookie = "__Host-mwpre";

struct PortalSettings {
    std::string origin;                      // "https://portal.example.test:8443": the only Origin POSTs may come from
    std::size_t max_form_size = 16 * 1024;   // [portal] max_form_size: the body of every other form
    std::size_t max_reply_size = 10u << 20;  // [portal] max_reply_size: a reply's text and files
    escrow::Brand brand;                     // [branding]
    std::string logo;                        // [branding] logo_file's bytes, read at start ("" = none)
    std::string logo_type;                   // its Content-Type: image/png or image/jpeg
};

// A reply's HTTP body is its text and files plus the multipart framing around them: this much more.
inline constexpr std::size_t kReplyFraming = 256 * 1024;
// The most any request's body may be (the server's limit before routing).
std::size_t max_body_size(const PortalSettings& s);

// The origin ("scheme://host[:port]", lower case, default port dropped) of an absolute URL;
// "" when url is not http(s).
std::string origin_of(std::string_view url);

class Portal {
  public:
    Portal(escrow::EscrowService& service, boost::asio::thread_pool& pool, PortalSettings settings);
    // The server's admitter: admission() at once, or on the pool where it needs the store.
    void admit(HttpRequest req, Admit admit);
    // A request's header alone (no body yet): refused, or let in with its route's body limit.
    Admission admission(const HttpRequest& req, std::chrono::system_clock::time_point now);
    // The server's handler: runs route() on the pool and responds from there.
    void handle(HttpRequest req, Respond respond);
    // One request, synchronously (tests call it directly).
    HttpResponse route(const HttpRequest& req, std::chrono::system_clock::time_point now);

  private:
    Ui ui_for(const HttpRequest& req) const;

    escrow::EscrowService& service_;
    boost::asio::thread_pool& pool_;
    PortalSettings settings_;
};

}  // namespace mailward::portal
