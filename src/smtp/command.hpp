// Parser for SMTP commands received by the submission server (RFC 5321 section 4.1.1) and their
// extension parameters: SIZE (RFC 1870), BODY (RFC 6152, 3030), SMTPUTF8 (RFC 6531), RET/ENVID/
// NOTIFY/ORCPT (RFC 3461), REQUIRETLS (RFC 8689), AUTH (RFC 4954). Pure: no I/O. Input is one
// command line without its CRLF, untrusted. A failure comes back as the reply to send.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/address.hpp"
#include "smtp/reply.hpp"

namespace mailward::smtp {

enum class Verb { helo, ehlo, mail, rcpt, data, rset, noop, quit, vrfy, expn, help, starttls, auth, bdat };

enum class Body { unspecified, seven_bit, eight_bit_mime, binary_mime };
enum class Ret { unspecified, full, hdrs };

struct MailParams {
    std::optional<std::uint64_t> size;  // SIZE=
    Body body = Body::unspecified;      // BODY=
    bool smtputf8 = false;              // SMTPUTF8
    bool requiretls = false;            // REQUIRETLS
    Ret ret = Ret::unspecified;         // RET=
    std::string envid;                  // ENVID=, xtext-decoded
    std::string auth;                   // AUTH= (RFC 4954 5), xtext-decoded, "<>" kept as is
};

struct RcptParams {
    unsigned notify = 0;  // NotifyBits of store.hpp: never=1 success=2 failure=4 delay=8
    std::string orcpt;    // ORCPT= as "addr-type;decoded-address", "" when absent
};

struct Command {
    Verb verb{};
    std::string argument;  // HELO/EHLO domain, VRFY/EXPN/HELP/NOOP text, AUTH "MECH [initial]", BDAT args
    Mailbox path;          // MAIL (may be empty: null sender) and RCPT
    MailParams mail;
    RcptParams rcpt;
};

struct ParseOptions {
    // Parameters are only accepted for extensions the server announced.
    bool smtputf8 = true;
    bool eight_bit_mime = true;
    bool dsn = true;
    bool requiretls = true;  // announced only after TLS; the caller sets it accordingly
    bool auth = true;
    std::uint64_t max_size = 0;  // 0 = no limit; SIZE= above it -> 552 5.3.4
    // The open transaction's MAIL carried SMTPUTF8: only then may RCPT addresses hold UTF-8
    // (RFC 6531 3.4); otherwise such a RCPT gets 553 5.6.7.
    bool transaction_smtputf8 = false;
};

// Either a Command or the reply explaining why the line is not one.
using ParseResult = std::variant<Command, Reply>;

ParseResult parse_command(std::string_view line, const ParseOptions& opts);

// RFC 3461 section 4 xtext.
std::optional<std::string> xtext_decode(std::string_view text);
std::string xtext_encode(std::string_view text);

}  // namespace mailward::smtp
