// The one domain-name check (see domain.hpp): RFC 1035 2.3.1 / RFC 5321 4.1.2 syntax, RFC 1035
// 2.3.4 lengths, A-labels only (RFC 5890). Input is untrusted; the check never reads past the view.
#include "common/domain.hpp"

#include "common/ascii.hpp"

namespace mailward::common {
namespace {

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.domain"; }
    std::string message(int ev) const override {
        switch (static_cast<DomainError>(ev)) {
            case DomainError::ok: return "a domain name";
            case DomainError::empty: return "empty";
            case DomainError::too_long: return "longer than 253 characters";
            case DomainError::empty_label: return "empty label";
            case DomainError::label_too_long: return "a label is longer than 63 characters";
            case DomainError::non_ascii: return "write internationalised names as A-labels, xn--...";
            case DomainError::bad_character: return "a character other than a letter, digit or '-'";
            case DomainError::hyphen_at_edge: return "a label starts or ends with '-'";
            case DomainError::numeric_top: return "an address, not a name";
        }
        return "not a domain name";
    }
};

struct Check {
    DomainError error = DomainError::ok;
    char bad = 0;  // the refused character, for bad_character
};

Check check(std::string_view d, DomainRules rules) {
    if (rules.final_dot && !d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty()) return {DomainError::empty};
    if (d.size() > 253) return {DomainError::too_long};
    std::string_view last;
    while (true) {
        const auto dot = d.find('.');
        const std::string_view label = d.substr(0, dot);
        if (label.empty()) return {DomainError::empty_label};
        if (label.size() > 63) return {DomainError::label_too_long};
        for (char c : label) {
            if (static_cast<unsigned char>(c) >= 0x80) return {DomainError::non_ascii};
            if (!ascii::is_alnum(c) && c != '-' && !(rules.underscore && c == '_')) {
                return {DomainError::bad_character, c};
            }
        }
        if (label.front() == '-' || label.back() == '-') return {DomainError::hyphen_at_edge};
        last = label;
        if (dot == std::string_view::npos) break;
        d.remove_prefix(dot + 1);
    }
    bool numeric = true;
    for (char c : last) numeric = numeric && ascii::is_digit(c);
    if (numeric) return {DomainError::numeric_top};
    return {};
}

}  // namespace

const boost::system::error_category& domain_category() noexcept {
    static const Category c;
    return c;
}

Result<DomainName> DomainName::parse(std::string_view text, DomainRules rules) {
    if (auto c = check(text, rules); c.error != DomainError::ok) return make_error_code(c.error);
    if (rules.final_dot && text.back() == '.') text.remove_suffix(1);
    return DomainName(ascii::lower(text));
}

std::string domain_problem(std::string_view text, DomainRules rules) {
    const auto c = check(text, rules);
    if (c.error == DomainError::ok) return "";
    if (c.error == DomainError::bad_character) return std::string("'") + c.bad + "' is not allowed";
    return domain_category().message(static_cast<int>(c.error));
}

}  // namespace mailward::common
