// What the ingress paths are configured with: department feeds, spool directories and the
// bounds of one feed input. Plain values, filled by the gateway's configuration loader.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "xml/limits.h"

namespace sluice::ingress {

// A department feed: its own format, translated by the adapter its mapping file names.
struct FeedConfig {
  std::string name;
  std::filesystem::path mapping;
};

// A directory that a system which can only drop files writes into: files renamed into
// <path>/incoming are translated by `feed` as sender `sender`, then moved to done/ or
// failed/ (with <file>.errors.json).
struct SpoolInConfig {
  std::string name;
  std::filesystem::path path;
  std::string feed;
  std::string sender;
  std::string owner;  // user that must own every file dropped here; empty: any owner
};

struct FeedOptions {
  std::vector<FeedConfig> feeds;
  xml::ParseLimits xml;                     // max_bytes: the bound on one translated document
  std::size_t max_input_bytes = 64u << 20;  // one feed input (a file, a multipart part)
  std::size_t max_records = 100'000;        // records in one feed input
  int threads = 1;                          // workers translating feed inputs
};

}  // namespace sluice::ingress
