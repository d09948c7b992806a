// DKIM signing and verification (RFC 6376; ed25519-sha256 RFC 8463) through libopendkim: the library
// does the canonicalisation (relaxed/relaxed), hashing and the signature header; this file feeds it
// the stored message (CRLF header lines, then the body) and reads the result. Verification takes
// the key record from memory through libopendkim's key lookup callback, never from DNS.
#include "dkim/dkim.hpp"

#include <sys/types.h>

#include <cstdint>
// dkim.h is C99 (with its own extern "C"): its _Bool is C++'s bool.
#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/ascii.hpp"

namespace mailward::dkim {
namespace {

class DkimCategory final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.dkim"; }
    std::string message(int ev) const override {
        switch (static_cast<DkimErrc>(ev)) {
            case DkimErrc::ok: return "ok";
            case DkimErrc::bad_key: return "the DKIM private key cannot be used";
            case DkimErrc::bad_message: return "the message has no header section DKIM can sign";
            case DkimErrc::bad_signature: return "the DKIM signature does not verify";
            case DkimErrc::no_signature: return "the message has no DKIM signature";
            case DkimErrc::bad_name: return "not a valid DKIM domain or selector";
            case DkimErrc::library_error: return "libopendkim failed";
            case DkimErrc::unsupported:
                return "ed25519-sha256 signing is not offered (libopendkim 2.11 leaks per signature)";
        }
        return "unknown DKIM error";
    }
};

// The header fields of a message: each with its folding, without the final CRLF.
struct Parsed {
    std::vector<std::string_view> headers;
    std::string_view body;
    bool ok = false;
};

Parsed split(std::string_view m) {
    Parsed p;
    std::size_t pos = 0;
    while (pos < m.size()) {
        if (m.compare(pos, 2, "\r\n") == 0) {  // the empty line
            p.body = m.substr(pos + 2);
            p.ok = !p.headers.empty();
            return p;
        }
        if (m[pos] == ' ' || m[pos] == '\t') return p;  // continuation without a field
        std::size_t end = pos;
        while (true) {
            std::size_t nl = m.find("\r\n", end);
            if (nl == std::string_view::npos) {
                end = m.size();
                break;
            }
            end = nl;
            if (nl + 2 < m.size() && (m[nl + 2] == ' ' || m[nl + 2] == '\t')) {
                end = nl + 2;
                continue;
            }
            break;
        }
        std::string_view field = m.substr(pos, end - pos);
        if (field.find(':') == std::string_view::npos) return p;
        p.headers.push_back(field);
        pos = end + 2;
    }
    p.ok = !p.headers.empty();  // header only, no body
    return p;
}

std::string_view name_of(std::string_view field) {
    std::string_view n = field.substr(0, field.find(':'));
    while (!n.empty() && (n.back() == ' ' || n.back() == '\t')) n.remove_suffix(1);
    return n;
}

bool iequals(std::string_view a, std::string_view b) {
    return common::ascii::lower(std::string(a)) == common::ascii::lower(std::string(b));
}

// The library handles, made once: one for signing (the header lists set), one for verifying (the
// key record comes from the handle's user context through key_lookup).
struct LibDeleter {
    void operator()(DKIM_LIB* l) const { dkim_close(l); }
};
struct HandleDeleter {
    void operator()(DKIM* d) const { dkim_free(d); }
};
using Handle = std::unique_ptr<DKIM, HandleDeleter>;

DKIM_LIB* signing_lib() {
    static std::unique_ptr<DKIM_LIB, LibDeleter> lib = [] {
        std::unique_ptr<DKIM_LIB, LibDeleter> l(dkim_init(nullptr, nullptr));
        if (!l) return l;
        static std::vector<std::string> names(kSignedHeaders.begin(), kSignedHeaders.end());
        static std::vector<const char*> sign;
        for (auto& n : names) sign.push_back(n.c_str());
        sign.push_back(nullptr);
        static const char* over[] = {"from", nullptr};
        const char** sp = sign.data();
        const char** op = over;
        dkim_options(l.get(), DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sp, sizeof sp);
        dkim_options(l.get(), DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, op, sizeof op);
        return l;
    }();
    return lib.get();
}

DKIM_CBSTAT key_lookup(DKIM* d, DKIM_SIGINFO*, u_char* buf, size_t len) {
    const auto* record = static_cast<const std::string*>(dkim_get_user_context(d));
    if (record == nullptr || record->size() + 1 > len) return DKIM_CBSTAT_ERROR;
    std::memcpy(buf, record->c_str(), record->size() + 1);
    return DKIM_CBSTAT_CONTINUE;
}

DKIM_LIB* verifying_lib() {
    static std::unique_ptr<DKIM_LIB, LibDeleter> lib = [] {
        std::unique_ptr<DKIM_LIB, LibDeleter> l(dkim_init(nullptr, nullptr));
        if (l) dkim_set_key_lookup(l.get(), key_lookup);
        return l;
    }();
    return lib.get();
}

Result<void> feed(DKIM* d, const Parsed& p) {
    for (auto h : p.headers) {
        std::string copy(h);
        if (dkim_header(d, reinterpret_cast<u_char*>(copy.data()), copy.size()) != DKIM_STAT_OK)
            return DkimErrc::bad_message;
    }
    DKIM_STAT st = dkim_eoh(d);
    if (st != DKIM_STAT_OK) return st == DKIM_STAT_NOSIG ? DkimErrc::no_signature : DkimErrc::bad_message;
    if (!p.body.empty()) {
        std::string body(p.body);
        if (dkim_body(d, reinterpret_cast<u_char*>(body.data()), body.size()) != DKIM_STAT_OK)
            return DkimErrc::library_error;
    }
    return {};
}

// A DKIM-Signature tag's value (d=, s=), spaces removed; "" when absent.
std::string tag(std::string_view value, std::string_view name) {
    std::string flat;
    for (char c : value)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') flat += c;
    std::size_t pos = 0;
    while (pos <= flat.size()) {
        std::size_t end = flat.find(';', pos);
        if (end == std::string::npos) end = flat.size();
        std::string_view t = std::string_view(flat).substr(pos, end - pos);
        if (t.size() > name.size() && t.substr(0, name.size()) == name && t[name.size()] == '=')
            return std::string(t.substr(name.size() + 1));
        pos = end + 1;
    }
    return {};
}

}  // namespace

const boost::system::error_category& dkim_category() noexcept {
    static const DkimCategory c;
    return c;
}

const std::string_view kEd25519Refusal =
    "ed25519-sha256 is not offered: Debian 12's libopendkim 2.11 leaks memory on every ed25519 signature";

const std::vector<std::string_view> kSignedHeaders{
    "from",         "to",           "cc",       "subject",     "date",       "message-id",
    "mime-version", "content-type", "reply-to", "in-reply-to", "references",
};

std::string_view to_string(Algorithm a) { return a == Algorithm::ed25519_sha256 ? "ed25519-sha256" : "rsa-sha256"; }

std::optional<Algorithm> parse_algorithm(std::string_view s) {
    if (s == "rsa-sha256") return Algorithm::rsa_sha256;
    if (s == "ed25519-sha256") return Algorithm::ed25519_sha256;
    return std::nullopt;
}

std::string_view to_string(SignOutcome::Kind k) {
    switch (k) {
        case SignOutcome::Kind::signed_now: return "signed";
        case SignOutcome::Kind::no_key: return "no key";
        case SignOutcome::Kind::relayed_not_signed: return "relayed, sign_relayed = false";
        case SignOutcome::Kind::already_signed: return "already signed";
        case SignOutcome::Kind::failed: return "failed";
    }
    return "?";
}

Result<std::string> sign(std::string_view message, const SigningKey& key) {
    Parsed p = split(message);
    if (!p.ok) return DkimErrc::bad_message;
    DKIM_LIB* lib = signing_lib();
    if (lib == nullptr) return DkimErrc::library_error;
    if (key.algorithm == Algorithm::ed25519_sha256) return DkimErrc::unsupported;  // kEd25519Refusal
    // libopendkim leaks what dkim_privkey_load allocated when a key does not parse: check it first.
    if (!public_record(key.pem, key.algorithm)) return DkimErrc::bad_key;
    DKIM_STAT st = DKIM_STAT_OK;
    const auto alg = key.algorithm == Algorithm::ed25519_sha256 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256;
    Handle d(dkim_sign(lib, reinterpret_cast<const u_char*>("mailward"), nullptr,
                       reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(key.pem.c_str())),
                       reinterpret_cast<const u_char*>(key.selector.c_str()),
                       reinterpret_cast<const u_char*>(key.domain.c_str()), DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, alg,
                       -1, &st));
    if (!d || st != DKIM_STAT_OK) return DkimErrc::bad_key;
    if (auto fed = feed(d.get(), p); !fed) return fed.error();
    st = dkim_eom(d.get(), nullptr);
    if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) return DkimErrc::library_error;
    if (st != DKIM_STAT_OK) return DkimErrc::bad_key;
    u_char* buf = nullptr;
    size_t len = 0;
    const std::string_view prefix = "DKIM-Signature: ";
    if (dkim_getsighdr_d(d.get(), prefix.size(), &buf, &len) != DKIM_STAT_OK || buf == nullptr)
        return DkimErrc::library_error;
    std::string out(prefix);
    std::string_view v(reinterpret_cast<const char*>(buf), len);
    for (std::size_t i = 0; i < v.size(); ++i) {  // the library folds with bare LF
        if (v[i] == '\r') continue;
        if (v[i] == '\n') {
            out += "\r\n";
            continue;
        }
        out += v[i];
    }
    out += "\r\n";
    return out;
}

Result<void> verify(std::string_view message, std::string_view key_record) {
    Parsed p = split(message);
    if (!p.ok) return DkimErrc::bad_message;
    DKIM_LIB* lib = verifying_lib();
    if (lib == nullptr) return DkimErrc::library_error;
    DKIM_STAT st = DKIM_STAT_OK;
    Handle d(dkim_verify(lib, reinterpret_cast<const u_char*>("mailward"), nullptr, &st));
    if (!d) return DkimErrc::library_error;
    std::string record(key_record);
    dkim_set_user_context(d.get(), &record);
    if (auto fed = feed(d.get(), p); !fed) return fed.error();
    st = dkim_eom(d.get(), nullptr);
    if (st == DKIM_STAT_OK) return {};
    if (st == DKIM_STAT_NOSIG) return DkimErrc::no_signature;
    return DkimErrc::bad_signature;
}

std::optional<std::string> from_domain(std::string_view message) {
    Parsed p = split(message);
    for (auto h : p.headers) {
        if (!iequals(name_of(h), "from")) continue;
        std::string value(h.substr(h.find(':') + 1));
        // dkim_mail_parse takes one address: the first of a list.
        std::string unfolded;
        for (char c : value)
            if (c != '\r' && c != '\n') unfolded += c;
        std::vector<u_char> buf(unfolded.begin(), unfolded.end());
        buf.push_back('\0');
        u_char* user = nullptr;
        u_char* domain = nullptr;
        if (dkim_mail_parse(buf.data(), &user, &domain) != 0 || domain == nullptr || *domain == '\0')
            return std::nullopt;
        return common::ascii::lower(reinterpret_cast<const char*>(domain));
    }
    return std::nullopt;
}

bool has_signature_by(std::string_view message, std::string_view domain) {
    Parsed p = split(message);
    const std::string want = common::ascii::lower(std::string(domain));
    for (auto h : p.headers) {
        if (!iequals(name_of(h), "dkim-signature")) continue;
        if (common::ascii::lower(tag(h.substr(h.find(':') + 1), "d")) == want) return true;
    }
    return false;
}

const SigningKey* Signer::find(std::string_view domain) const {
    for (const auto& k : keys_)
        if (iequals(k.domain, domain)) return &k;
    return nullptr;
}

SignOutcome Signer::sign_outgoing(std::string& message, bool own) const {
    SignOutcome o;
    auto from = from_domain(message);
    if (!from) return o;
    o.domain = *from;
    const SigningKey* key = find(*from);
    if (key == nullptr) return o;
    if (!own && !key->sign_relayed) {
        o.kind = SignOutcome::Kind::relayed_not_signed;
        return o;
    }
    if (has_signature_by(message, key->domain)) {
        o.kind = SignOutcome::Kind::already_signed;
        return o;
    }
    auto header = sign(message, *key);
    if (!header) {
        o.kind = SignOutcome::Kind::failed;
        o.detail = header.error().message();
        return o;
    }
    message.insert(0, *header);
    o.kind = SignOutcome::Kind::signed_now;
    o.detail = "s=" + key->selector;
    return o;
}

}  // namespace mailward::dkim
