// count_received and from_addresses: see header_scan.hpp. The From: value is read as an RFC 5322
// 3.4 address-list (mailboxes and groups, obsolete routes inside <> dropped); a mailbox whose
// address cannot be read makes the result malformed, so a check never passes on what it missed.
#include "server/header_scan.hpp"

#include <cctype>

namespace mailward::server {
namespace {

// True when field's name is name (lower case given; any case in field). "Received :" (obsolete
// syntax, WSP before the colon, RFC 5322 4.5) counts too.
bool name_is(std::string_view field, std::string_view name) {
    if (field.size() <= name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(field[i])) != name[i]) return false;
    }
    std::size_t i = name.size();
    while (i < field.size() && (field[i] == ' ' || field[i] == '\t')) ++i;
    return i < field.size() && field[i] == ':';
}

// Calls f(field) for each header field, unfolded lines joined as they are (CRLF WSP kept).
template <class F>
void for_each_field(std::string_view msg, F f) {
    std::size_t pos = 0;
    std::size_t field_start = std::string_view::npos;
    while (pos < msg.size()) {
        std::size_t eol = msg.find("\r\n", pos);
        const std::size_t next = eol == std::string_view::npos ? msg.size() : eol + 2;
        if (eol == std::string_view::npos) eol = msg.size();
        const std::string_view line = msg.substr(pos, eol - pos);
        const bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
        if (!continuation) {
            if (field_start != std::string_view::npos) f(msg.substr(field_start, pos - field_start));
            field_start = std::string_view::npos;
            if (line.empty()) return;  // end of the header section
            field_start = pos;
        }
        pos = next;
    }
    if (field_start != std::string_view::npos) f(msg.substr(field_start));
}

std::string trim(std::string_view s) {
    std::size_t a = 0, b = s.size();
    while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
    while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
    return std::string(s.substr(a, b - a));
}

// Parses one address-list value into out; false when some mailbox cannot be read, or (require_one)
// when it names none.
bool parse_address_list(std::string_view v, std::vector<std::string>& out, bool require_one = true) {
    std::string bare;   // text outside comments and <>: an addr-spec, or a display name
    std::string angle;  // the content of <...>
    bool has_angle = false;
    bool ok = true;
    std::size_t found = 0;
    auto end_mailbox = [&] {
        std::string addr = has_angle ? angle : trim(bare);
        if (has_angle) {
            if (auto colon = addr.rfind(':'); colon != std::string::npos) addr.erase(0, colon + 1);  // route
            addr = trim(addr);
        }
        if (!addr.empty() || has_angle) {
            if (addr.find('@') == std::string::npos || addr.find_first_of(" \t\r\n") != std::string::npos) {
                ok = false;
            } else {
                out.push_back(addr);
                ++found;
            }
        }
        bare.clear();
        angle.clear();
        has_angle = false;
    };
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        if (c == '"') {  // quoted string: kept (a quoted local part), escapes included
            std::size_t j = i + 1;
            for (; j < v.size() && v[j] != '"'; ++j) {
                if (v[j] == '\\') ++j;
            }
            if (j >= v.size()) return false;
            (has_angle ? angle : bare).append(v.substr(i, j - i + 1));
            i = j;
        } else if (c == '(') {  // comment, nested
            int depth = 1;
            std::size_t j = i + 1;
            for (; j < v.size() && depth > 0; ++j) {
                if (v[j] == '\\') ++j;
                else if (v[j] == '(') ++depth;
                else if (v[j] == ')') --depth;
            }
            if (depth > 0) return false;
            i = j - 1;
            bare += ' ';
        } else if (c == '<') {
            std::size_t j = i + 1;
            std::string inside;
            for (; j < v.size() && v[j] != '>'; ++j) {
                if (v[j] == '"') {
                    std::size_t k = j + 1;
                    for (; k < v.size() && v[k] != '"'; ++k) {
                        if (v[k] == '\\') ++k;
                    }
                    if (k >= v.size()) return false;
                    inside.append(v.substr(j, k - j + 1));
                    j = k;
                } else {
                    inside += v[j];
                }
            }
            if (j >= v.size() || has_angle) return false;
            angle = inside;
            has_angle = true;
            i = j;
        } else if (c == ',' || c == ';') {
            end_mailbox();
        } else if (c == ':') {  // group display name ends
            if (has_angle) return false;
            bare.clear();
        } else if (c == '\r' || c == '\n') {
            bare += ' ';
        } else {
            if (has_angle && !std::isspace(static_cast<unsigned char>(c))) return false;  // text after <>
            bare += c;
        }
    }
    end_mailbox();
    return ok && (found > 0 || !require_one);
}

}  // namespace

std::size_t count_received(std::string_view message) {
    std::size_t n = 0;
    for_each_field(message, [&n](std::string_view field) {
        if (name_is(field, "received")) ++n;
    });
    return n;
}

FromAddresses from_addresses(std::string_view message) {
    FromAddresses r;
    for_each_field(message, [&r](std::string_view field) {
        if (!name_is(field, "from")) return;
        const std::string_view value = field.substr(field.find(':') + 1);
        if (!parse_address_list(value, r.addresses)) r.malformed = true;
    });
    return r;
}

HeaderAddresses field_addresses(std::string_view message, std::initializer_list<std::string_view> names) {
    HeaderAddresses r;
    for_each_field(message, [&r, names](std::string_view field) {
        for (std::string_view name : names) {
            if (!name_is(field, name)) continue;
            const std::string_view value = field.substr(field.find(':') + 1);
            if (!parse_address_list(value, r.addresses, false)) r.malformed = true;
            return;
        }
    });
    return r;
}

}  // namespace mailward::server
