// Domain names as mailward checks them wherever a name comes from outside (config, the preload
// list, MTA-STS, `policy` and `check` on the command line): the preferred name syntax of RFC 1035
// 2.3.1 as RFC 5321 4.1.2 uses it (sub-domain = Let-dig [Ldh-str]; RFC 1123 2.1 lets a label start
// with a digit), labels of 1-63 octets (RFC 1035 2.3.4), at most 253 octets without the final dot,
// a last label that is not all digits (RFC 3696 2: that is an address), international names as
// A-labels only (RFC 5890). '_' is refused unless a caller asks for it (service labels, RFC 8552).
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mailward::common {

enum class DomainError {
    ok = 0,
    empty,           // nothing (or only a final dot)
    too_long,        // more than 253 octets
    empty_label,     // "a..b", ".a", or a final dot where none is allowed
    label_too_long,  // a label of more than 63 octets
    non_ascii,       // an octet >= 0x80: U-labels are not accepted, write A-labels
    bad_character,   // not a letter, digit or '-' (or '_' when allowed)
    hyphen_at_edge,  // a label starts or ends with '-'
    numeric_top,     // the last label is all digits: an address, not a name
};

const boost::system::error_category& domain_category() noexcept;
inline error_code make_error_code(DomainError e) noexcept { return {static_cast<int>(e), domain_category()}; }

struct DomainRules {
    bool final_dot = true;    // "example.org." is accepted (and the dot dropped)
    bool underscore = false;  // '_' is a label character (e.g. "_mta-sts"), as for service labels
};

// One checked name: lower case, without the final dot.
class DomainName {
  public:
    static Result<DomainName> parse(std::string_view text, DomainRules rules = {});
    const std::string& str() const { return name_; }

  private:
    explicit DomainName(std::string name) : name_(std::move(name)) {}
    std::string name_;
};

// Why text is not a domain name under rules, in words for an administrator ("a label is longer
// than 63 characters", "'_' is not allowed"); "" when it is one.
std::string domain_problem(std::string_view text, DomainRules rules = {});

}  // namespace mailward::common

namespace boost::system {
template <>
struct is_error_code_enum<mailward::common::DomainError> : std::true_type {};
}  // namespace boost::system
