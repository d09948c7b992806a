// The audit anchor: the head of every message's audit chain kept where a database write alone
// cannot change it. After each commit that appends audit rows, one line per row,
// "ESCROW_ID SEQ HASH\n", is appended to data_dir/escrow-audit.anchor (O_APPEND, fdatasync) and
// logged. `escrow audit` checks the database's rows against it: a row the anchor knows that is
// missing or different (the last rows deleted, say) breaks the verdict. The file is trusted only
// as far as it parses: malformed lines (a torn last write) are skipped and counted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "store/escrow_store.hpp"

namespace mailward::escrow {

// The anchor file's name in data_dir.
inline constexpr const char* kAuditAnchorFile = "escrow-audit.anchor";

struct AnchorEntry {
    std::int64_t seq = 0;
    std::string hash;  // hex
};

class AuditAnchor {
  public:
    // Opens (creating 0600) file for appending.
    static Result<std::unique_ptr<AuditAnchor>> open(const std::filesystem::path& file);
    ~AuditAnchor();
    AuditAnchor(const AuditAnchor&) = delete;
    AuditAnchor& operator=(const AuditAnchor&) = delete;

    // Appends one line per row in one write and syncs it. Thread-safe.
    Result<void> append(const std::vector<store::EscrowAuditEntry>& rows);

  private:
    explicit AuditAnchor(int fd) : fd_(fd) {}
    std::mutex mu_;
    int fd_ = -1;
};

// Installs a sink on st that anchors (and logs) every audit row after its commit. The anchor
// stays open as long as the sink is installed. A failed append is logged as an error (the rows
// are committed already; `escrow audit` then finds the anchor behind, which it accepts).
Result<void> attach_audit_anchor(store::EscrowStore& st, const std::filesystem::path& file);

struct AnchorRead {
    bool file_exists = false;
    std::vector<AnchorEntry> entries;  // of the message asked for, in file order
    std::size_t malformed = 0;         // lines of the file that did not parse
};
// Every anchored row of escrow_id in file (a missing file is no error: file_exists = false).
Result<AnchorRead> read_anchor(const std::filesystem::path& file, const std::string& escrow_id);

struct AnchorVerdict {
    bool matches = true;
    std::size_t anchored = 0;   // anchor lines for the message
    std::int64_t head_seq = 0;  // the highest anchored seq, 0 when none
    std::string problem;        // one line, "" when it matches
};
// Checks a message's rows (oldest first) against its anchored entries: each must be there, with
// the same hash. Rows newer than the anchor's head are accepted (a crash between the commit and
// the anchor's write leaves the anchor behind).
AnchorVerdict check_anchor(const std::vector<store::EscrowAuditEntry>& rows, const std::vector<AnchorEntry>& anchored);

}  // namespace mailward::escrow
