#pragma once
// Read-only memory map of a whole file (RAII). Model files are mapped, never copied.
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.hpp"

namespace turbine {

/// A whole file mapped read-only into memory; unmapped when destroyed.
class MappedFile {
 public:
  MappedFile() = default;
  /// Maps `path`; throws Error naming the file if it cannot be opened or mapped.
  explicit MappedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) fail(path, ": cannot open (", std::strerror(errno), ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(path, ": not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        fail(path, ": mmap failed (", std::strerror(errno), ")");
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept { swap(o); }  ///< takes over the mapping of `o`
  /// Unmaps this file and takes over the mapping of `o`.
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) { reset(); swap(o); }
    return *this;
  }
  ~MappedFile() { reset(); }

  const std::byte* data() const { return data_; }     ///< the first byte (null for an empty file)
  size_t size() const { return size_; }               ///< bytes in the file
  const std::string& path() const { return path_; }  ///< the path it was opened with

 private:
  void reset() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
  void swap(MappedFile& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace turbine
