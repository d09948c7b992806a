// libunbound context configuration for [dns]; see unbound_config.hpp. Special-use names are RFC 6761
// (test., invalid., localhost.), RFC 7686 (onion.) and RFC 8375 (home.arpa.); anchors RFC 4033 4.
#include "dns/unbound_config.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unbound.h>

#include "config/config.hpp"

namespace mailward::dns {
namespace {

// Debian's dns-root-data anchor (a read-only DS/DNSKEY file, so ub_ctx_add_ta_file, not autr).
constexpr const char* kRootKeyFile = "/usr/share/dns/root.key";

// The root zone's trust anchors (KSK-2017 and KSK-2024, IANA), used when no file is configured
// and Debian's dns-root-data file is missing.
constexpr const char* kRootAnchors[] = {
    ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
};

// libunbound answers these itself (NXDOMAIN or fixed data) whatever the forwarders say.
constexpr const char* kSpecialUseZones[] = {"test.", "invalid.", "onion.", "localhost.", "home.arpa."};

bool set_option(ub_ctx* ctx, const char* opt, const std::string& value, std::string& error) {
    int rc = ub_ctx_set_option(ctx, opt, value.c_str());
    if (rc != 0) {
        error = std::string("libunbound option ") + opt + " " + value + ": " + ub_strerror(rc);
        return false;
    }
    return true;
}

bool fail(std::string& error, std::string why, int rc) {
    error = std::move(why) + ": " + ub_strerror(rc);
    return false;
}

}  // namespace

bool configure(ub_ctx* ctx, const config::DnsConfig& cfg, std::string& error) {
    // A thread, not a forked process: results come back through ub_fd() either way.
    if (int rc = ub_ctx_async(ctx, 1); rc != 0) return fail(error, "libunbound", rc);
    // Forwarders on loopback (a local caching resolver, the lab) are refused without this.
    if (!set_option(ctx, "do-not-query-localhost:", "no", error)) return false;
    if (!cfg.servers.empty()) {
        // Every query goes to these servers, special-use names included (docs/design.md, [dns]).
        // "local-zone: test. nodefault" set through ub_ctx_set_option does not undo libunbound
        // 1.17's built-in zone (seen against the lab: NXDOMAIN still); "transparent" does: the zone
        // has no local data, so every query goes on to the forwarders.
        for (const char* zone : kSpecialUseZones) {
            if (!set_option(ctx, "local-zone:", std::string(zone) + " transparent", error)) return false;
        }
        for (const auto& s : cfg.servers) {
            std::string fwd = s.host + "@" + std::to_string(s.port);
            if (int rc = ub_ctx_set_fwd(ctx, fwd.c_str()); rc != 0) {
                return fail(error, "[dns] servers: " + s.to_string(), rc);
            }
        }
    } else if (int rc = ub_ctx_resolvconf(ctx, nullptr); rc != 0) {
        return fail(error, "/etc/resolv.conf", rc);
    }
    std::string anchors = "the root trust anchor";
    if (!cfg.trust_anchor_file.empty()) {
        anchors = "[dns] trust_anchor_file " + cfg.trust_anchor_file.string();
        if (std::FILE* f = std::fopen(cfg.trust_anchor_file.c_str(), "r")) {
            std::fclose(f);
        } else {
            error = anchors + ": " + std::strerror(errno);
            return false;
        }
        if (int rc = ub_ctx_add_ta_file(ctx, cfg.trust_anchor_file.c_str()); rc != 0) return fail(error, anchors, rc);
    } else if (std::error_code ec; std::filesystem::exists(kRootKeyFile, ec)) {
        if (int rc = ub_ctx_add_ta_file(ctx, kRootKeyFile); rc != 0) {
            return fail(error, anchors + " " + kRootKeyFile, rc);
        }
    } else {
        for (const char* ta : kRootAnchors) {
            if (int rc = ub_ctx_add_ta(ctx, ta); rc != 0) return fail(error, anchors, rc);
        }
    }
    // libunbound reads the anchors when the context is finalized, by default at the first query,
    // which would then fail (and every one after it) with only a line on stderr. Removing a zone
    // that does not exist finalizes it now, without any network traffic, so a bad file stops startup.
    if (int rc = ub_ctx_zone_remove(ctx, "mailward-finalize.invalid."); rc != 0) {
        return fail(error, anchors + " cannot be loaded (libunbound's reason is on stderr)", rc);
    }
    return true;
}

}  // namespace mailward::dns
