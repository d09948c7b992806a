// The audit anchor file (see anchor.hpp): appends with O_APPEND + fdatasync, reading and checking.
// Linux file I/O; lines are ASCII "ID SEQ HASH".
#include "escrow/anchor.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>

namespace mailward::escrow {
namespace {

error_code sys_error(int err) { return error_code(err, boost::system::system_category()); }

bool is_hex(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

Result<std::unique_ptr<AuditAnchor>> AuditAnchor::open(const std::filesystem::path& file) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        spdlog::error("escrow: cannot open the audit anchor {}: {}", file.string(), std::strerror(err));
        return sys_error(err);
    }
    return std::unique_ptr<AuditAnchor>(new AuditAnchor(fd));
}

AuditAnchor::~AuditAnchor() {
    if (fd_ >= 0) ::close(fd_);
}

Result<void> AuditAnchor::append(const std::vector<store::EscrowAuditEntry>& rows) {
    std::string text;
    for (const auto& r : rows) text += r.escrow_id + " " + std::to_string(r.seq) + " " + r.hash + "\n";
    std::lock_guard lk(mu_);
    const char* p = text.data();
    std::size_t n = text.size();
    while (n > 0) {
        ssize_t w = ::write(fd_, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno);
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    if (::fdatasync(fd_) != 0) return sys_error(errno);
    return {};
}

Result<void> attach_audit_anchor(store::EscrowStore& st, const std::filesystem::path& file) {
    auto anchor = AuditAnchor::open(file);
    if (!anchor) return anchor.error();
    std::shared_ptr<AuditAnchor> a = std::move(*anchor);
    st.set_audit_sink([a, file](const std::vector<store::EscrowAuditEntry>& rows) {
        for (const auto& r : rows) spdlog::info("escrow: audit {} #{} {} {}", r.escrow_id, r.seq, r.event, r.hash);
        if (auto w = a->append(rows); !w)
            spdlog::error("escrow: cannot append {} audit row(s) to the anchor {}: {}", rows.size(), file.string(),
                          w.error().message());
    });
    return {};
}

Result<AnchorRead> read_anchor(const std::filesystem::path& file, const std::string& escrow_id) {
    AnchorRead out;
    std::error_code exists_ec;
    if (!std::filesystem::exists(file, exists_ec) && !exists_ec) return out;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        spdlog::error("escrow: cannot read the audit anchor {}", file.string());
        return sys_error(EIO);
    }
    out.file_exists = true;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto s1 = line.find(' ');
        auto s2 = s1 == std::string::npos ? s1 : line.find(' ', s1 + 1);
        if (s2 == std::string::npos) {
            ++out.malformed;
            continue;
        }
        std::string_view id(line.data(), s1);
        std::string_view seq_text(line.data() + s1 + 1, s2 - s1 - 1);
        std::string_view hash(line.data() + s2 + 1, line.size() - s2 - 1);
        std::int64_t seq = 0;
        auto [p, ec] = std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), seq);
        if (ec != std::errc() || p != seq_text.data() + seq_text.size() || seq <= 0 || !is_hex(id) || !is_hex(hash)) {
            ++out.malformed;
            continue;
        }
        if (id == escrow_id) out.entries.push_back(AnchorEntry{seq, std::string(hash)});
    }
    return out;
}

AnchorVerdict check_anchor(const std::vector<store::EscrowAuditEntry>& rows, const std::vector<AnchorEntry>& anchored) {
    AnchorVerdict v;
    v.anchored = anchored.size();
    std::map<std::int64_t, const store::EscrowAuditEntry*> by_seq;
    for (const auto& r : rows) by_seq[r.seq] = &r;
    const std::int64_t last = rows.empty() ? 0 : rows.back().seq;
    for (const auto& a : anchored) v.head_seq = std::max(v.head_seq, a.seq);
    if (v.head_seq > last) {
        v.matches = false;
        v.problem = "the database's audit ends at seq " + std::to_string(last) + " but the anchor records seq " +
                    std::to_string(v.head_seq) + ": rows at the end were removed";
        return v;
    }
    for (const auto& a : anchored) {
        auto it = by_seq.find(a.seq);
        if (it == by_seq.end()) {
            v.matches = false;
            v.problem = "the row with seq " + std::to_string(a.seq) + " recorded in the anchor is missing";
            return v;
        }
        if (it->second->hash != a.hash) {
            v.matches = false;
            v.problem = "the row with seq " + std::to_string(a.seq) + " differs from the anchor's hash";
            return v;
        }
    }
    return v;
}

}  // namespace mailward::escrow
