// HTML escaping for text placed in markup or attribute values (the portal's pages, escrow notices,
// the TLS report): &, <, >, " and ' as character references. Input is untrusted.
#pragma once

#include <string>
#include <string_view>

namespace mailward::common {

std::string html_escape(std::string_view s);

}  // namespace mailward::common
