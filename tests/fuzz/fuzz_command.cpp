// libFuzzer target: parse_command with options taken from the first two input bytes, the rest is
// the command line. Checks that a rejection is a well-formed 5xx reply that does not echo control
// octets, that an accepted command respects the options and limits, and xtext round trips.
#include <string>

#include "fuzz_common.hpp"
#include "smtp/command.hpp"

using namespace mailward;
using namespace mailward::smtp;

namespace {

void check_reply(const Reply& r) {
    fuzz::check(r.code >= 500 && r.code <= 555, "rejection code is 5xx");
    fuzz::check(r.enhanced.size() == 5 && r.enhanced[0] == '5' && r.enhanced[1] == '.', "enhanced code 5.x.y");
    fuzz::check(r.lines.size() == 1 && !r.lines[0].empty(), "one non-empty reply line");
    for (char ch : r.lines[0]) {
        const auto c = static_cast<unsigned char>(ch);
        fuzz::check(c >= 0x20 && c < 0x7F, "reply text is printable ASCII (no client octets echoed)");
    }
    const std::string wire = r.wire();
    fuzz::check(wire.find('\n') == wire.size() - 1 && wire.find('\r') == wire.size() - 2, "one wire line");
}

void check_path(const Mailbox& m, bool utf8) {
    if (m.empty()) return;
    fuzz::check(!m.local.empty() && !m.domain.empty(), "a mailbox has both parts");
    fuzz::check(m.local.size() <= 64 && m.domain.size() <= 255, "length limits");
    auto again = parse_path("<" + m.to_string() + ">", false, utf8);
    fuzz::check(again.has_value(), "a parsed mailbox parses again");
    fuzz::check(again->local == m.local && again->domain == m.domain, "re-parse gives the same mailbox");
}

void check_command(const Command& c, const ParseOptions& o) {
    switch (c.verb) {
        case Verb::mail:
            check_path(c.path, o.smtputf8);
            if (!o.smtputf8) fuzz::check(!c.mail.smtputf8, "SMTPUTF8 only when announced");
            if (!o.requiretls) fuzz::check(!c.mail.requiretls, "REQUIRETLS only when announced");
            if (!o.eight_bit_mime) fuzz::check(c.mail.body == Body::unspecified, "BODY only when announced");
            if (!o.dsn) fuzz::check(c.mail.ret == Ret::unspecified && c.mail.envid.empty(), "DSN only when announced");
            if (!o.auth) fuzz::check(c.mail.auth.empty(), "AUTH= only when announced");
            if (o.max_size != 0 && c.mail.size) fuzz::check(*c.mail.size <= o.max_size, "SIZE within the limit");
            fuzz::check(c.mail.envid.size() <= 100, "ENVID length");
            break;
        case Verb::rcpt:
            fuzz::check(!c.path.empty(), "a recipient is never null");
            check_path(c.path, o.smtputf8 && o.transaction_smtputf8);
            fuzz::check(c.rcpt.notify == 0 || c.rcpt.notify == 1 || (c.rcpt.notify & ~14u) == 0, "NOTIFY bits");
            if (!o.dsn) fuzz::check(c.rcpt.notify == 0 && c.rcpt.orcpt.empty(), "DSN only when announced");
            break;
        case Verb::helo:
        case Verb::ehlo:
        case Verb::vrfy:
        case Verb::expn:
        case Verb::auth:
        case Verb::bdat: fuzz::check(!c.argument.empty(), "required argument present"); break;
        case Verb::data:
        case Verb::rset:
        case Verb::quit:
        case Verb::starttls: fuzz::check(c.argument.empty(), "no argument"); break;
        default: break;
    }
    for (char ch : c.argument) fuzz::check(static_cast<unsigned char>(ch) >= 0x20, "argument has no controls");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t bits = in.byte();
    const std::uint8_t size_sel = in.byte();
    ParseOptions o;
    o.smtputf8 = bits & 1;
    o.eight_bit_mime = bits & 2;
    o.dsn = bits & 4;
    o.requiretls = bits & 8;
    o.auth = bits & 16;
    o.transaction_smtputf8 = bits & 32;
    const std::uint64_t sizes[] = {0, 1, 1000, 10485760};
    o.max_size = sizes[size_sel % 4];
    const std::string_view line = in.rest();

    auto result = parse_command(line, o);
    if (auto* r = std::get_if<Reply>(&result)) {
        check_reply(*r);
    } else {
        check_command(std::get<Command>(result), o);
    }

    const std::string encoded = xtext_encode(line);
    auto decoded = xtext_decode(encoded);
    fuzz::check(decoded && *decoded == line, "xtext_decode(xtext_encode(x)) == x");
    if (auto plain = xtext_decode(line)) {
        fuzz::check(xtext_decode(xtext_encode(*plain)) == plain, "xtext round trip of decoded text");
    }
    return 0;
}
