#pragma once

#include <string>
#include <string_view>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"

namespace cachecar::config {

// Reads and validates a YAML file. Errors read "FILE:LINE: key.path: what is wrong", e.g.
// "conf/x.yaml:7: caches.default.backend: unknown backend 'mem'; valid: memory, redis".
// Unknown keys are errors. yaml-cpp exceptions never leave this function.
Result<Config> loadConfigFile(const std::string& path);
// Same, from text; `source` names it in messages.
Result<Config> parseConfig(std::string_view yaml_text, const std::string& source);

// Parses "host:port", "[v6]:port" (used for --listen).
Result<HostPort> parseHostPort(std::string_view text);
// Parses "http://host[:port][/]" (used for --upstream).
Result<UpstreamSettings> parseUpstreamUrl(std::string_view text);

// A few lines for --check-config and the startup log: listen, upstream, workers, each cache
// and each route.
std::string summarize(const Config& config);

}  // namespace cachecar::config
