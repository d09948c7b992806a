// File helpers with explicit fsync, for files that must survive a crash.
#include "common/fsutil.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace mailward::common {
namespace {

error_code from_errno() { return error_code(errno, boost::system::system_category()); }

Result<void> fsync_path(const std::filesystem::path& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return from_errno();
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return from_errno();
    return {};
}

}  // namespace

Result<std::string> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return error_code(errno ? errno : ENOENT, boost::system::system_category());
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Errc::io_error;
    return ss.str();
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode) {
    std::filesystem::path tmp = path;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return from_errno();
    ::fchmod(fd, mode);
    std::size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            auto ec = from_errno();
            ::close(fd);
            return ec;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        auto ec = from_errno();
        ::close(fd);
        return ec;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return from_errno();
    auto dir = path.parent_path();
    return fsync_path(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY);
}

Result<void> make_dirs(const std::filesystem::path& path, unsigned mode) {
    // Each missing component is made with mode (create_directories would use 0777 & ~umask).
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return {};
    auto parent = path.parent_path();
    if (!parent.empty() && parent != path) {
        if (auto r = make_dirs(parent, mode); !r) return r;
    }
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return from_errno();
    return {};
}

}  // namespace mailward::common
