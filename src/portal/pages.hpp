// The portal's HTML pages: self-contained (inline style, no script, no external asset), readable on
// a phone (viewport, fluid layout), accessible (lang, labels, headings, visible focus). Every value
// from a message or a request is escaped here; the message's HTML body arrives already sanitized
// and goes into a sandboxed iframe's srcdoc with its own CSP. Every page carries the brand (logo,
// name, colour, support contact, the sentence that nobody asks for a password) and says its
// language (<html lang>); the texts are escrow/brand.hpp's tables.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "escrow/brand.hpp"
#include "message/view.hpp"

namespace mailward::portal {

// The portal's own Content-Security-Policy (no script anywhere; inline style for the pages and the
// message; images only from data: URLs inside the message).
inline constexpr std::string_view kPageCsp =
    "default-src 'self'; script-src 'none'; object-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// Whom a page speaks for, and in which language.
struct Ui {
    escrow::Lang lang = escrow::Lang::en;
    const escrow::Brand* brand = nullptr;  // nullptr: the defaults
    const escrow::Texts& t() const { return escrow::texts(lang); }
};

std::string simple_page(const Ui& ui, std::string_view title, std::string_view text);
std::string simple_page(const Ui& ui, const escrow::PageText& p);

// The link's page (GET only shows it): who sent it, until when, and the two forms.
std::string landing_page(const Ui& ui, std::string_view token, std::string_view sender_name,
                         std::chrono::system_clock::time_point expires, std::string_view csrf, bool locked);
// After "send me a code": the same answer whatever happened, and the code form.
std::string code_page(const Ui& ui, std::string_view token, std::string_view csrf, std::string_view notice);

struct MessagePage {
    const message::MessageView* view = nullptr;
    std::string safe_html;  // sanitized HTML body ("" = none)
    std::size_t blocked_images = 0;
    std::string csrf;
    std::chrono::system_clock::time_point expires{};
    std::string notice;  // e.g. "Your reply was sent." ("" = none)
    bool can_reply = true;
};
std::string message_page(const Ui& ui, const MessagePage& p);

}  // namespace mailward::portal
