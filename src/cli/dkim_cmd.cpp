// `mailward dkim keygen DOMAIN SELECTOR [--algorithm rsa-sha256|ed25519-sha256] [--bits 2048] [--out FILE]`:
// makes a DKIM private key (OpenSSL 3 EVP; written 0600, never over an existing file) and prints the
// DNS TXT record to publish at SELECTOR._domainkey.DOMAIN (RFC 6376 3.6; ed25519 per RFC 8463) and
// the [[dkim]] entry for the configuration (docs/operations.md "DKIM").
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "cli/cli.hpp"
#include "common/ascii.hpp"
#include "dkim/dkim.hpp"

namespace mailward::cli {
namespace {

struct KeygenArgs {
    std::string domain, selector, algorithm = "rsa-sha256", out;
    unsigned bits = 2048;
};

void keygen(const Options& opts, const KeygenArgs& a) {
    const std::string domain = common::ascii::lower(a.domain);
    if (!dkim::valid_name(domain, false))
        throw Failure("'" + a.domain + "' is not a domain name (expected e.g. example.org)", 2);
    if (!dkim::valid_name(a.selector, true))
        throw Failure("'" + a.selector + "' is not a selector (expected letters, digits, '-', '_', e.g. mail2026)", 2);
    auto alg = dkim::parse_algorithm(a.algorithm);
    if (!alg) throw Failure("'" + a.algorithm + "' is not an algorithm (expected rsa-sha256)", 2);
    if (*alg == dkim::Algorithm::ed25519_sha256)
        throw Failure(std::string(dkim::kEd25519Refusal) + " (expected --algorithm rsa-sha256)", 2);
    if (*alg == dkim::Algorithm::rsa_sha256 && (a.bits < 1024 || a.bits > 8192))
        throw Failure("--bits " + std::to_string(a.bits) + " is out of range (expected 1024..8192, e.g. 2048)", 2);

    std::filesystem::path out = a.out;
    if (out.empty()) {
        const config::Config cfg = load_config(opts);
        const auto dir = cfg.server.data_dir / "dkim";
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            throw Failure("cannot create " + dir.string() + ": " + std::strerror(errno));
        out = dir / (a.selector + "." + domain + ".key");
    }
    auto key = dkim::generate_key(*alg, a.bits);
    if (!key) throw Failure("cannot make the key: " + key.error().message());
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST) throw Failure(out.string() + " exists already (not overwritten; choose another --out)", 1);
        throw Failure("cannot create " + out.string() + ": " + std::strerror(errno));
    }
    std::size_t done = 0;
    while (done < key->pem.size()) {
        const ssize_t n = ::write(fd, key->pem.data() + done, key->pem.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = std::strerror(errno);
            ::close(fd);
            ::unlink(out.c_str());
            throw Failure("cannot write " + out.string() + ": " + why);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0)
        throw Failure("cannot write " + out.string() + ": " + std::strerror(errno));
    const auto absolute = std::filesystem::absolute(out).lexically_normal();

    std::cout << "wrote the private key to " << absolute.string() << " (mode 0600)\n\n"
              << "publish this DNS record:\n"
              << dkim::txt_line(a.selector, domain, key->record) << "\n\n"
              << "then add to the configuration (and restart serve):\n"
              << "[[dkim]]\n"
              << "domain = \"" << domain << "\"\n"
              << "selector = \"" << a.selector << "\"\n"
              << "key_file = \"" << absolute.string() << "\"\n"
              << "algorithm = \"" << dkim::to_string(*alg) << "\"\n";
}

}  // namespace

void add_dkim(CLI::App& app, Options& opts) {
    auto* dk = app.add_subcommand("dkim", "DKIM signing keys: keygen");
    dk->require_subcommand(1);
    static KeygenArgs args;
    auto* k = dk->add_subcommand("keygen", "make a DKIM key; print its DNS TXT record and [[dkim]] entry");
    add_common(k, opts, false);
    k->add_option("DOMAIN", args.domain, "the signing domain (d=)")->required();
    k->add_option("SELECTOR", args.selector, "the selector (s=)")->required();
    k->add_option("--algorithm", args.algorithm,
                  "rsa-sha256 (the default; ed25519-sha256 is refused, see docs/design.md \"DKIM\")");
    k->add_option("--bits", args.bits, "RSA key size (default 2048)");
    k->add_option("--out", args.out, "key file (default DATA_DIR/dkim/SELECTOR.DOMAIN.key)");
    k->callback([&opts] { keygen(opts, args); });
}

}  // namespace mailward::cli
