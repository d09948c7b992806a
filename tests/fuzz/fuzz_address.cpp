// libFuzzer target: parse_path and parse_mailbox with utf8/allow_null from the first input byte.
// Checks consumed stays in bounds and marks a bracketed path, limits hold, 8-bit appears only with
// utf8, and every accepted mailbox prints back to text that parses to the same mailbox.
#include <string>

#include "fuzz_common.hpp"
#include "smtp/address.hpp"
#include "smtp/utf8.hpp"

using namespace mailward;
using namespace mailward::smtp;

namespace {

void check_mailbox(const Mailbox& m, bool utf8) {
    fuzz::check(!m.local.empty() && !m.domain.empty(), "both parts present");
    fuzz::check(m.local.size() <= 64, "local part limit");
    fuzz::check(m.domain.size() <= 255, "domain limit");
    if (!utf8) fuzz::check(!detail::has_8bit(m.local) && !detail::has_8bit(m.domain), "8-bit only with utf8");
    fuzz::check(detail::valid_utf8(m.local) && detail::valid_utf8(m.domain), "valid UTF-8");
    auto again = parse_mailbox(m.to_string(), utf8);
    fuzz::check(again.has_value(), "printed mailbox parses");
    fuzz::check(again->local == m.local && again->domain == m.domain, "printed mailbox parses the same");
    std::string lower = m.domain_lower();
    fuzz::check(lower.size() == m.domain.size(), "domain_lower keeps the length");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t bits = in.byte();
    const bool utf8 = bits & 1;
    const bool allow_null = bits & 2;
    const std::string_view text = in.rest();

    std::size_t used = 12345;
    auto path = parse_path(text, allow_null, utf8, &used);
    if (path) {
        fuzz::check(used >= 2 && used <= text.size() && used <= 256, "consumed in bounds");
        fuzz::check(text.front() == '<' && text[used - 1] == '>', "consumed covers <...>");
        if (path->empty()) {
            fuzz::check(allow_null && used == 2, "null path only when allowed");
        } else {
            check_mailbox(*path, utf8);
        }
    } else {
        fuzz::check(used == 0, "consumed is 0 on failure");
        fuzz::check(path.error().category() == address_category(), "address error category");
        fuzz::check(!path.error().message().empty(), "error message");
    }

    auto box = parse_mailbox(text, utf8);
    if (box) {
        check_mailbox(*box, utf8);
        fuzz::check(box->to_string() == text, "a bare mailbox is all of the text");
    }
    return 0;
}
