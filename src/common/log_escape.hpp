// Escaping of untrusted text (user names, addresses, HELO names, remote replies) before it goes
// into a log line, so a client cannot forge log lines or confuse a terminal: CR, LF, the other C0
// controls, DEL, the C1 controls, backslash and bytes that are not UTF-8 (RFC 3629) are shown as
// \xNN; well-formed UTF-8 stays readable. The result is one line of valid UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace mailward::common {

std::string log_escape(std::string_view text);

}  // namespace mailward::common
