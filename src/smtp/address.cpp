// Paths and mailboxes of RFC 5321 section 4.1.2 (Dot-string, Quoted-string, Domain, address
// literals of 4.1.3 with the IPv6 forms), source routes accepted and dropped (Appendix C), the
// size limits of 4.5.3.1, and the UTF-8 forms of RFC 6531 section 3.3 when SMTPUTF8 is in force.
// Input is untrusted client text; the parser never reads past the view and never throws.
#include "smtp/address.hpp"

#include "smtp/utf8.hpp"

namespace mailward::smtp {
namespace {

constexpr std::size_t kMaxLocal = 64;    // 4.5.3.1.1
constexpr std::size_t kMaxDomain = 255;  // 4.5.3.1.2
constexpr std::size_t kMaxPath = 256;    // 4.5.3.1.3, brackets included
constexpr std::size_t kMaxLabel = 63;    // RFC 1035 2.3.4, for ASCII labels

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.smtp.address"; }
    std::string message(int ev) const override {
        switch (static_cast<AddressError>(ev)) {
            case AddressError::ok: return "success";
            case AddressError::missing_brackets: return "the address must be enclosed in <...>";
            case AddressError::bad_local_part:
                return "the local part (before @) is neither a valid dot-string nor a quoted "
                       "string";
            case AddressError::bad_domain:
                return "the domain is missing or is not a valid host name or address literal";
            case AddressError::local_part_too_long: return "the local part is longer than 64 octets";
            case AddressError::domain_too_long: return "the domain is longer than 255 octets";
            case AddressError::path_too_long: return "the path is longer than 256 octets";
            case AddressError::utf8_not_allowed:
                return "the address contains non-ASCII octets but SMTPUTF8 is not in effect";
            case AddressError::bad_utf8: return "the address contains invalid UTF-8";
            case AddressError::null_not_allowed: return "the null address <> is not allowed here";
        }
        return "unknown address error";
    }
};

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool is_atext(unsigned char c) {
    if (is_alpha(c) || is_digit(c)) return true;
    for (char s : std::string_view("!#$%&'*+-/=?^_`{|}~")) {
        if (c == static_cast<unsigned char>(s)) return true;
    }
    return false;
}

// "IPv6:" compared without regard to case (ABNF strings are case-insensitive).
bool has_ipv6_tag(std::string_view v) {
    constexpr std::string_view tag = "ipv6:";
    if (v.size() < tag.size()) return false;
    for (std::size_t i = 0; i < tag.size(); ++i) {
        char c = v[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != tag[i]) return false;
    }
    return true;
}

// Snum 3("." Snum), Snum = 1*3DIGIT in 0..255.
bool valid_ipv4(std::string_view v) {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t digits = 0;
        unsigned value = 0;
        while (i < v.size() && is_digit(v[i]) && digits < 4) {
            value = value * 10 + static_cast<unsigned>(v[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0 || digits > 3 || value > 255) return false;
        if (++parts == 4) return i == v.size();
        if (i >= v.size() || v[i] != '.') return false;
        ++i;
    }
}

// Counts the 16-bit groups of one side of an IPv6 literal; an IPv4 tail counts two groups.
bool count_groups(std::string_view part, bool allow_v4, int& groups, bool& v4) {
    groups = 0;
    v4 = false;
    if (part.empty()) return true;
    while (true) {
        const std::size_t colon = part.find(':');
        const std::string_view piece = part.substr(0, colon);
        if (colon == std::string_view::npos && allow_v4 && piece.find('.') != std::string_view::npos) {
            if (!valid_ipv4(piece)) return false;
            groups += 2;
            v4 = true;
            return true;
        }
        if (piece.empty() || piece.size() > 4) return false;
        for (char c : piece) {
            if (!is_hex(c)) return false;
        }
        ++groups;
        if (colon == std::string_view::npos) return true;
        part.remove_prefix(colon + 1);
    }
}

// IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp of RFC 5321 4.1.3.
bool valid_ipv6(std::string_view v) {
    const std::size_t gap = v.find("::");
    int left = 0, right = 0;
    bool v4_left = false, v4_right = false;
    if (gap == std::string_view::npos) return count_groups(v, true, left, v4_left) && left == 8;
    if (v.find("::", gap + 1) != std::string_view::npos) return false;  // also rejects ":::"
    if (!count_groups(v.substr(0, gap), false, left, v4_left)) return false;
    if (!count_groups(v.substr(gap + 2), true, right, v4_right)) return false;
    return left + right <= 6;  // "::" stands for at least two groups
}

class Parser {
  public:
    Parser(std::string_view text, bool utf8, std::size_t pos) : s_(text), utf8_(utf8), pos_(pos) {}

    std::size_t pos() const { return pos_; }
    bool at_end() const { return pos_ >= s_.size(); }
    bool next_is(char c) const { return !at_end() && s_[pos_] == c; }
    void skip() { ++pos_; }

    // Local-part = Dot-string / Quoted-string; out keeps quotes and backslashes as written.
    AddressError local_part(std::string& out) {
        const std::size_t start = pos_;
        const AddressError e = next_is('"') ? quoted_string() : dot_string();
        if (e != AddressError::ok) return e;
        if (pos_ - start > kMaxLocal) return AddressError::local_part_too_long;
        out.assign(s_.substr(start, pos_ - start));
        return AddressError::ok;
    }

    // Domain / address-literal.
    AddressError domain(std::string& out, bool allow_literal) {
        const std::size_t start = pos_;
        AddressError e = AddressError::bad_domain;
        if (next_is('[')) {
            if (allow_literal) e = address_literal();
        } else {
            e = dotted_domain();
        }
        if (e != AddressError::ok) return e;
        if (pos_ - start > kMaxDomain) return AddressError::domain_too_long;
        out.assign(s_.substr(start, pos_ - start));
        return AddressError::ok;
    }

    // A-d-l ":" = At-domain *( "," At-domain ) ":"; the route is parsed and dropped.
    AddressError source_route() {
        std::string ignored;
        while (true) {
            if (!next_is('@')) return AddressError::bad_domain;
            skip();
            if (auto e = domain(ignored, false); e != AddressError::ok) return e;
            if (next_is(',')) {
                skip();
                continue;
            }
            if (!next_is(':')) return AddressError::bad_domain;
            skip();
            return AddressError::ok;
        }
    }

  private:
    // Takes one non-ASCII UTF-8 sequence (UTF8-non-ascii of RFC 6531) at pos_.
    AddressError utf8_char() {
        if (!utf8_) return AddressError::utf8_not_allowed;
        const std::size_t n = detail::utf8_sequence_length(s_, pos_);
        if (n == 0) return AddressError::bad_utf8;
        pos_ += n;
        return AddressError::ok;
    }

    AddressError dot_string() {
        bool need_atom = true;  // at the start or right after a dot
        while (!at_end()) {
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '.') {
                if (need_atom) return AddressError::bad_local_part;
                need_atom = true;
                skip();
            } else if (c >= 0x80) {
                if (auto e = utf8_char(); e != AddressError::ok) return e;
                need_atom = false;
            } else if (is_atext(c)) {
                need_atom = false;
                skip();
            } else {
                break;
            }
        }
        return need_atom ? AddressError::bad_local_part : AddressError::ok;
    }

    // DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE.
    AddressError quoted_string() {
        skip();
        while (!at_end()) {
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                skip();
                return AddressError::ok;
            }
            if (c == '\\') {
                if (pos_ + 1 >= s_.size()) return AddressError::bad_local_part;
                const auto q = static_cast<unsigned char>(s_[pos_ + 1]);
                if (q < 32 || q > 126) return AddressError::bad_local_part;
                pos_ += 2;
            } else if (c >= 0x80) {
                if (auto e = utf8_char(); e != AddressError::ok) return e;
            } else if (c >= 32 && c <= 126) {
                skip();
            } else {
                return AddressError::bad_local_part;
            }
        }
        return AddressError::bad_local_part;  // no closing quote
    }

    // sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str] or a U-label (RFC 6531).
    AddressError dotted_domain() {
        while (true) {
            const std::size_t start = pos_;
            bool ascii = true;
            while (!at_end()) {
                const auto c = static_cast<unsigned char>(s_[pos_]);
                if (c >= 0x80) {
                    if (auto e = utf8_char(); e != AddressError::ok) return e;
                    ascii = false;
                } else if (is_alpha(c) || is_digit(c) || c == '-') {
                    skip();
                } else {
                    break;
                }
            }
            const std::string_view label = s_.substr(start, pos_ - start);
            if (label.empty() || label.front() == '-' || label.back() == '-') return AddressError::bad_domain;
            if (ascii && label.size() > kMaxLabel) return AddressError::bad_domain;
            if (!next_is('.')) return AddressError::ok;
            skip();
        }
    }

    // "[" IPv4-address-literal / "IPv6:" IPv6-addr "]"; general literals have no registered tag
    // besides IPv6 and are refused.
    AddressError address_literal() {
        const std::size_t close = s_.find(']', pos_);
        if (close == std::string_view::npos) return AddressError::bad_domain;
        const std::string_view inner = s_.substr(pos_ + 1, close - pos_ - 1);
        bool ok = false;
        if (inner.size() > 5 && has_ipv6_tag(inner)) {
            ok = valid_ipv6(inner.substr(5));
        } else {
            ok = valid_ipv4(inner);
        }
        if (!ok) return AddressError::bad_domain;
        pos_ = close + 1;
        return AddressError::ok;
    }

    std::string_view s_;
    bool utf8_;
    std::size_t pos_;
};

// Local-part "@" Domain at the parser's position; stops right after the domain.
AddressError mailbox_at(Parser& p, Mailbox& m) {
    if (auto e = p.local_part(m.local); e != AddressError::ok) return e;
    if (!p.next_is('@')) return p.at_end() || p.next_is('>') ? AddressError::bad_domain : AddressError::bad_local_part;
    p.skip();
    return p.domain(m.domain, true);
}

}  // namespace

const boost::system::error_category& address_category() noexcept {
    static const Category category;
    return category;
}

std::string Mailbox::domain_lower() const {
    std::string out = domain;
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

Result<Mailbox> parse_path(std::string_view text, bool allow_null, bool utf8, std::size_t* consumed) {
    if (consumed) *consumed = 0;
    if (text.empty() || text.front() != '<') return AddressError::missing_brackets;
    Parser p(text, utf8, 1);
    Mailbox m;
    if (p.next_is('>')) {
        if (!allow_null) return AddressError::null_not_allowed;
        if (consumed) *consumed = 2;
        return m;
    }
    if (p.next_is('@')) {
        if (auto e = p.source_route(); e != AddressError::ok) return e;
    }
    if (auto e = mailbox_at(p, m); e != AddressError::ok) return e;
    if (p.at_end()) return AddressError::missing_brackets;
    if (!p.next_is('>')) return AddressError::bad_domain;
    p.skip();
    if (p.pos() > kMaxPath) return AddressError::path_too_long;
    if (consumed) *consumed = p.pos();
    return m;
}

Result<Mailbox> parse_mailbox(std::string_view text, bool utf8) {
    Parser p(text, utf8, 0);
    Mailbox m;
    if (auto e = mailbox_at(p, m); e != AddressError::ok) return e;
    if (!p.at_end()) return AddressError::bad_domain;
    return m;
}

}  // namespace mailward::smtp
