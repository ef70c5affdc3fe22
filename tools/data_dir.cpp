#include "tools/data_dir.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/hash.h"
#include "engine/codec.h"

namespace buoni::tools {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view key_file_prefix = "signing-";
constexpr std::string_view key_file_suffix = ".key";

std::string key_path(const DataDir& dir, std::uint16_t key_id) {
  return dir.keys() + "/" + std::string(key_file_prefix) + std::to_string(key_id) +
         std::string(key_file_suffix);
}
}  // namespace

bool data_dir_exists(const DataDir& dir) {
  std::error_code ec;
  return fs::exists(dir.db() + "/CURRENT", ec);
}


namespace {
// Reads DIR/keys/pin-pepper, making it first if this directory predates it.
Status load_pepper(const DataDir& dir, std::array<std::uint8_t, 32>& out) {
  std::error_code ec;
  if (!fs::exists(dir.pin_pepper(), ec)) {
    SystemRandom random;
    random.fill(out);
    BUONI_RETURN_IF_ERROR(write_secret_file(dir.pin_pepper(), to_hex(out) + "\n"));
  }
  BUONI_ASSIGN_OR_RETURN(std::string text, read_secret_file(dir.pin_pepper()));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!from_hex(text, out)) return corruption(dir.pin_pepper() + " is not 64 hex digits");
  return Status();
}
}  // namespace

namespace {
// Rewrites DIR/keys/public-keys from the signing keys (atomically: temp + rename).
Status write_public_keys(const DataDir& dir, const std::vector<SigningKey>& keys) {
  std::string tmp = dir.public_keys() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << format_public_keys(verify_keys(keys));
    out.flush();
    if (!out) return io_error("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, dir.public_keys(), ec);
  if (ec) return io_error("cannot write " + dir.public_keys() + ": " + ec.message());
  return Status();
}
}  // namespace

StatusOr<std::string> init_data_dir(const DataDir& dir, Random& random) {
  if (data_dir_exists(dir)) return already_exists(dir.root + " already holds a buoni store");
  std::error_code ec;
  fs::create_directories(dir.keys(), ec);
  if (ec) return io_error("cannot create " + dir.keys() + ": " + ec.message());
  fs::permissions(dir.keys(), fs::perms::owner_all, ec);
  if (!fs::exists(key_path(dir, 1))) {
    BUONI_RETURN_IF_ERROR(
        save_signing_key(key_path(dir, 1), SigningKey::generate(1), key_passphrase()));
  }
  std::array<std::uint8_t, 32> pepper{};
  BUONI_RETURN_IF_ERROR(load_pepper(dir, pepper));
  BUONI_ASSIGN_OR_RETURN(auto signing_keys, load_signing_keys(dir));
  BUONI_RETURN_IF_ERROR(write_public_keys(dir, signing_keys));
  storage::RocksOptions options;
  options.create_if_missing = true;
  BUONI_ASSIGN_OR_RETURN(auto store, storage::open_primary(dir.db(), options));
  std::string admin_key = make_api_key("ak_", random);
  Hash32 hash = api_key_hash(admin_key);
  engine::WriteSet set;
  engine::Writer w;
  w.u8(engine::format_v1);
  w.raw(hash);
  set.put(engine::Space::meta, std::string(engine::keys::admin_key_hash), w.take());
  BUONI_RETURN_IF_ERROR(store->write(set));
  return admin_key;
}

std::optional<std::string> key_passphrase() {
  const char* p = std::getenv("BUONI_KEY_PASSPHRASE");
  if (!p || !*p) return std::nullopt;
  return std::string(p);
}

StatusOr<std::vector<VerifyKey>> load_public_keys(const DataDir& dir) {
  std::error_code ec;
  if (!fs::exists(dir.public_keys(), ec)) {
    BUONI_ASSIGN_OR_RETURN(auto keys, load_signing_keys(dir));
    return verify_keys(keys);
  }
  std::ifstream in(dir.public_keys());
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return io_error("cannot read " + dir.public_keys());
  return parse_public_keys(text.str());
}

StatusOr<SigningKey> rotate_signing_key(const DataDir& dir) {
  BUONI_ASSIGN_OR_RETURN(auto keys, load_signing_keys(dir));
  if (keys.back().key_id == 0xFFFF) return invalid_argument("no key ids left");
  SigningKey fresh = SigningKey::generate(static_cast<std::uint16_t>(keys.back().key_id + 1));
  BUONI_RETURN_IF_ERROR(save_signing_key(key_path(dir, fresh.key_id), fresh, key_passphrase()));
  keys.push_back(fresh);
  BUONI_RETURN_IF_ERROR(write_public_keys(dir, keys));
  return fresh;
}

StatusOr<std::vector<SigningKey>> load_signing_keys(const DataDir& dir) {
  std::vector<SigningKey> keys;
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(dir.keys(), ec)) {
    std::string name = item.path().filename().string();
    if (!name.starts_with(key_file_prefix) || !name.ends_with(key_file_suffix)) continue;
    BUONI_ASSIGN_OR_RETURN(SigningKey key,
                           load_signing_key(item.path().string(), key_passphrase()));
    keys.push_back(key);
  }
  if (ec) return io_error("cannot read " + dir.keys() + ": " + ec.message());
  if (keys.empty()) return not_found("no signing key in " + dir.keys());
  std::sort(keys.begin(), keys.end(),
            [](const SigningKey& a, const SigningKey& b) { return a.key_id < b.key_id; });
  return keys;
}

std::vector<VerifyKey> verify_keys(const std::vector<SigningKey>& keys) {
  std::vector<VerifyKey> out;
  for (const auto& k : keys) out.push_back({k.key_id, k.public_key});
  return out;
}

StatusOr<std::unique_ptr<Node>> Node::open(const DataDir& dir) {
  if (!data_dir_exists(dir))
    return not_found(dir.root + " is not a buoni data directory (run `buoni init`)");
  std::unique_ptr<Node> node(new Node());
  BUONI_ASSIGN_OR_RETURN(node->keys_, load_signing_keys(dir));
  BUONI_RETURN_IF_ERROR(load_pepper(dir, node->pepper_));
  BUONI_ASSIGN_OR_RETURN(node->store_, storage::open_primary(dir.db(), storage::RocksOptions{}));
  BUONI_ASSIGN_OR_RETURN(node->engine_, engine::Engine::open(*node->store_, node->keys_.back(),
                                                             node->clock_, node->random_));
  return node;
}

Node::~Node() {
  if (engine_) engine_->stop();
  engine_.reset();
  store_.reset();
}

StatusOr<std::unique_ptr<Reader>> Reader::open(const DataDir& dir) {
  if (!data_dir_exists(dir))
    return not_found(dir.root + " is not a buoni data directory (run `buoni init`)");
  std::unique_ptr<Reader> reader(new Reader());
  BUONI_ASSIGN_OR_RETURN(reader->keys_, load_public_keys(dir));
  std::string pattern = (fs::temp_directory_path() / "buoni-reader-XXXXXX").string();
  if (!mkdtemp(pattern.data())) return io_error("cannot create a temporary directory");
  reader->secondary_dir_ = pattern;
  BUONI_ASSIGN_OR_RETURN(reader->store_, storage::open_secondary(dir.db(), reader->secondary_dir_));
  return reader;
}

Reader::~Reader() {
  store_.reset();
  std::error_code ec;
  if (!secondary_dir_.empty()) fs::remove_all(secondary_dir_, ec);
}

}  // namespace buoni::tools
