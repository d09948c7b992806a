// The body spool: large message bodies live in append-only segment files next to the database
// (data_dir/spool/<16 hex digits>.seg), the database holds where (spooled_bodies). Writing a body
// costs one pwrite by the submitting thread and, per group commit, one fdatasync per segment the
// batch touched - where a body inside SQLite's WAL is written page by page, then copied again at
// checkpoint (the 100 KiB relay profile in bench/RESULTS.md). The writer makes the segments
// durable before its COMMIT, so a committed row never points at bytes that could be lost.
//
// Space: a body no longer needed is "released": its blocks are punched out of the segment
// (fallocate PUNCH_HOLE), after being overwritten with zeros and synced when it must not linger
// (escrowed or administratively deleted plaintext). A segment file is unlinked once no row uses
// it and no process writes to it. Each process appends only to segments it created and holds an
// exclusive flock on them while it may still append, so sweeping (any process) never unlinks a
// segment another process is filling. Offsets are never reused: releasing twice is harmless.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mailward::store::sqlite {

struct SpoolRef {
    std::int64_t segment = 0;  // segment id (the file name, in hex)
    std::uint64_t start = 0;   // byte offset in the segment
    std::uint64_t length = 0;  // body octets
};

class BodySpool {
  public:
    // Creates dir (0700) when missing. segment_bytes: a segment takes appends until it is this big.
    static Result<std::unique_ptr<BodySpool>> open(std::filesystem::path dir, std::uint64_t segment_bytes);
    ~BodySpool();
    BodySpool(const BodySpool&) = delete;
    BodySpool& operator=(const BodySpool&) = delete;

    // Writes body into this process's active segment (page cache only: not durable yet). Every
    // successful append must be followed by settled(ref.segment) once its commit is decided.
    Result<SpoolRef> append(std::string_view body);
    // Makes everything appended so far to these segments durable (one fdatasync each).
    Result<void> sync(const std::vector<std::int64_t>& segments);
    // The commit that covers one append is over (committed or not).
    void settled(std::int64_t segment);

    // The body at ref; Errc::corrupt when the segment is shorter than the reference says,
    // not_found when the segment file is gone.
    Result<std::string> read(const SpoolRef& ref) const;
    // Frees ref's blocks; scrub: overwrite with zeros and fdatasync first. A missing segment or a
    // file system without hole punching is not an error (the space returns with the segment).
    Result<void> release(const SpoolRef& ref, bool scrub);

    // Unlinks segment files no row uses: in_use(segment) answers from the database. Segments this
    // or another process may still append to (flocked) are kept. Returns the number removed.
    std::size_t sweep(const std::function<Result<bool>(std::int64_t)>& in_use);

    // Where the next body could start after ref (bodies start on 4 KiB boundaries): a ref that
    // starts there is adjacent, and the two can be released as one.
    static std::uint64_t span_end(const SpoolRef& ref);

    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path path_of(std::int64_t segment) const;

  private:
    struct Segment {
        std::int64_t id = 0;
        int fd = -1;              // O_RDWR, flocked exclusively while open
        std::uint64_t end = 0;    // next append offset
        std::size_t pending = 0;  // appends not settled
        ~Segment();
    };
    BodySpool(std::filesystem::path dir, std::uint64_t segment_bytes, int dir_fd);
    Result<std::shared_ptr<Segment>> new_segment();  // caller holds mu_

    const std::filesystem::path dir_;
    const std::uint64_t segment_bytes_;
    const int dir_fd_;

    mutable std::mutex mu_;
    std::shared_ptr<Segment> active_;
    std::map<std::int64_t, std::shared_ptr<Segment>> open_;  // active + older ones with pending appends
};

}  // namespace mailward::store::sqlite
