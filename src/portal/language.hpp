// The portal's language from a request's Accept-Language (RFC 9110 section 12.5.4): language
// ranges (RFC 4647 section 2.1) with q-values (section 12.4.2). A range names a language we have
// when it is its tag or starts with it and "-" ("de-DE" for "de"), or is "*"; a language takes the
// weight of the most specific range naming it, and q=0 excludes it. The highest weight wins, the
// earlier range on a tie; a malformed header counts as none; nothing acceptable means English.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "escrow/brand.hpp"

namespace mailward::portal {

struct LanguageRange {
    std::string range;  // lower case, "*" or "de-de"
    int q = 1000;       // the weight in thousandths, 0..1000
    bool operator==(const LanguageRange&) const = default;
};

// The header's ranges in order; nullopt when it is malformed (or longer than 4096 octets).
std::optional<std::vector<LanguageRange>> parse_accept_language(std::string_view header);

// The language to answer in (English without a header, for a malformed one, or when none is acceptable).
escrow::Lang choose_language(std::optional<std::string_view> header);

}  // namespace mailward::portal
