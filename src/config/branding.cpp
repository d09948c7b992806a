// The [branding] section (docs/config.md): the organisation's name (printable UTF-8, no control
// characters), the accent colour (#rrggbb), the support contact (an RFC 5321 dot-atom address or
// an https:// URL of RFC 3986 characters) and the logo file, checked by its magic bytes (PNG,
// JPEG; never SVG, which can carry script) and its size.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/domain.hpp"
#include "config/branding_detail.hpp"

namespace mailward::config {

std::string_view logo_content_type(std::string_view b) {
    if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) return "image/png";
    if (b.size() >= 3 && b.substr(0, 3) == std::string_view("\xff\xd8\xff", 3)) return "image/jpeg";
    return {};
}

std::string read_logo(const std::filesystem::path& file, std::string& out) {
    out.clear();
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return std::strerror(errno);
    std::string why;
    struct stat st {};
    if (::fstat(fd, &st) != 0) why = std::strerror(errno);
    else if (!S_ISREG(st.st_mode)) why = "it is not a regular file";
    else if (static_cast<std::uintmax_t>(st.st_size) > kMaxLogoSize)
        why = "it is larger than " + std::to_string(kMaxLogoSize) + " octets";
    char buf[16384];
    while (why.empty()) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) why = std::strerror(errno);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > kMaxLogoSize) why = "it is larger than " + std::to_string(kMaxLogoSize) + " octets";
    }
    ::close(fd);
    if (why.empty() && logo_content_type(out).empty()) {
        const bool svg = out.find("<svg") != std::string::npos || out.find("<?xml") != std::string::npos;
        why = svg ? "it is SVG, which can carry script" : "it is neither PNG nor JPEG";
    }
    if (!why.empty()) out.clear();
    return why;
}

std::string organization_name(const Config& cfg) {
    return cfg.branding.organization.empty() ? cfg.server.hostname : cfg.branding.organization;
}

namespace detail {
namespace {

// Printable UTF-8: well-formed sequences, no C0/C1 control characters, no DEL.
bool printable_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) return false;
        if (c < 0x80) {
            ++i;
            continue;
        }
        const std::size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
        if (len == 0 || (len == 3 && c > 0xef) || i + len > s.size()) return false;
        std::uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        if (cp >= 0x80 && cp <= 0x9f) return false;
        i += len;
    }
    return true;
}

bool atext(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// local@domain with a dot-atom local part (RFC 5321 4.1.2) and a checked domain name.
bool email_address(std::string_view s) {
    const auto at = s.rfind('@');
    if (at == std::string_view::npos || at == 0 || at > 64) return false;
    const auto local = s.substr(0, at);
    if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) return false;
    for (char c : local)
        if (!atext(c) && c != '.') return false;
    return common::DomainName::parse(s.substr(at + 1), {.final_dot = false}).has_value();
}

// https://host[:port][/path][?query]: a checked host name, RFC 3986 characters only (no quote,
// no space, no angle bracket).
bool https_url(std::string_view s) {
    constexpr std::string_view scheme = "https://";
    if (!s.starts_with(scheme)) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("-._~:/?#[]@!$&()*+,;=%").find(c) != std::string_view::npos))
            return false;
    auto rest = s.substr(scheme.size());
    auto host = rest.substr(0, rest.find_first_of("/?#"));
    if (auto colon = host.find(':'); colon != std::string_view::npos) {
        auto port = host.substr(colon + 1);
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
            return false;
        host = host.substr(0, colon);
    }
    return common::DomainName::parse(host, {.final_dot = false}).has_value();
}

}  // namespace

void read_organization(Reader& r, const toml::node& n, Config& c) {
    std::string s;
    if (!r.read_string(n, s, "expected the organisation's name, e.g. \"Example Ltd\"")) return;
    if (s.size() > 128 || !printable_utf8(s)) {
        r.key_problem(n.source().begin.line, "branding.organization",
                      "not a name (expected at most 128 octets of printable UTF-8, e.g. \"Example Ltd\")");
        return;
    }
    c.branding.organization = std::move(s);
}

void read_color(Reader& r, const toml::node& n, Config& c) {
    std::string s;
    if (!r.read_string(n, s, "expected a colour \"#rrggbb\", e.g. \"#0b3d91\"")) return;
    bool ok = s.size() == 7 && s[0] == '#';
    for (std::size_t i = 1; ok && i < s.size(); ++i) {
        const char ch = s[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
    }
    if (!ok) {
        r.key_problem(n.source().begin.line, "branding.color",
                      "bad colour \"" + (printable_utf8(s) ? s : std::string("?")) +
                          "\" (expected \"#rrggbb\", six hex digits, e.g. \"#0b3d91\")");
        return;
    }
    for (auto& ch : s)
        if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
    c.branding.color = std::move(s);
}

void read_support_contact(Reader& r, const toml::node& n, Config& c) {
    constexpr std::string_view expected =
        "expected an e-mail address or an https:// URL, e.g. \"help@example.com\" or "
        "\"https://example.com/help\"";
    std::string s;
    if (!r.read_string(n, s, expected)) return;
    if (s.size() > 256 || !(email_address(s) || https_url(s))) {
        r.key_problem(
            n.source().begin.line, "branding.support_contact",
            "bad contact \"" + (printable_utf8(s) ? s : std::string("?")) + "\" (" + std::string(expected) + ")");
        return;
    }
    c.branding.support_contact = std::move(s);
}

void check_branding(Reader& r, const Config& cfg, bool open_files) {
    const std::size_t line = r.line_of("branding.logo_file");
    if (!open_files || line == 0 || cfg.branding.logo_file.empty()) return;
    std::string bytes;
    if (std::string why = read_logo(cfg.branding.logo_file, bytes); !why.empty())
        r.key_problem(line, "branding.logo_file",
                      "cannot use \"" + cfg.branding.logo_file.string() + "\": " + why +
                          " (expected a PNG or JPEG file of at most " + std::to_string(kMaxLogoSize) + " octets)");
}

}  // namespace detail
}  // namespace mailward::config
