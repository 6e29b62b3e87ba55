//! Bayes counts in Redis, shared by filter nodes. Each user has five keys, all with the
//! user's name as the hash tag (`bayes:{USER}:...`):
//! `vars` (hash: `spam`, `ham` messages learned), `s` and `h` (hashes from the token's 8
//! bytes to its spam and ham counts), `a` (token to the time it was last learned) and `seen`
//! (message key to `s` or `h`), with `seenat` (a sorted set of message keys by the time
//! they were learned, for purging). The set `bayes:users` names the users.
//!
//! Learning and forgetting run as one Lua script each, so a message counts wholly or not at
//! all and two nodes learning the same message count it once.

use super::store::{BayesError, Purge, TokenStore, now};
use super::{Class, Learned, MessageKey};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long a command waits for Redis: a message waits at most about this long for an
/// unreachable store before its check fails (451) and Postfix retries it later.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Tokens per purge script call: bounds how long one call holds Redis.
const PURGE_BATCH: usize = 1000;

/// Learns (`s`, `h`) or forgets (`f`) one message. KEYS: vars, s, h, a, seen, users, seenat.
/// ARGV: message key, `s`/`h`/`f`, now, user, tokens...
const LEARN: &str = r"
local was = redis.call('HGET', KEYS[5], ARGV[1])
local function apply(class, delta)
  local mine, other, total = KEYS[2], KEYS[3], 'spam'
  if class == 'h' then mine, other, total = KEYS[3], KEYS[2], 'ham' end
  if redis.call('HINCRBY', KEYS[1], total, delta) < 0 then
    redis.call('HSET', KEYS[1], total, 0)
  end
  for i = 5, #ARGV do
    local t = ARGV[i]
    if redis.call('HINCRBY', mine, t, delta) <= 0 then
      redis.call('HDEL', mine, t)
      if redis.call('HEXISTS', other, t) == 0 then redis.call('HDEL', KEYS[4], t) end
    elseif delta > 0 then
      redis.call('HSET', KEYS[4], t, ARGV[3])
    end
  end
  if delta > 0 then
    redis.call('HSET', KEYS[5], ARGV[1], class)
    redis.call('ZADD', KEYS[7], ARGV[3], ARGV[1])
  else
    redis.call('HDEL', KEYS[5], ARGV[1])
    redis.call('ZREM', KEYS[7], ARGV[1])
  end
end
redis.call('SADD', KEYS[6], ARGV[4])
if ARGV[2] == 'f' then
  if not was then return 'notlearned' end
  apply(was, -1)
  return 'forgotten'
end
if was == ARGV[2] then return 'unchanged' end
if was then
  apply(was, -1)
  apply(ARGV[2], 1)
  return 'flipped'
end
apply(ARGV[2], 1)
return 'new'
";

/// Removes the listed tokens that are still due: last learned before ARGV[1], or hapaxes
/// last learned before ARGV[2] (checked here, so a token learned meanwhile stays).
/// KEYS: s, h, a. ARGV: cutoff, hapax cutoff, tokens...
const PURGE: &str = r"
local old, hold, removed = tonumber(ARGV[1]), tonumber(ARGV[2]), 0
for i = 3, #ARGV do
  local t = ARGV[i]
  local a = redis.call('HGET', KEYS[3], t)
  if a then
    a = tonumber(a)
    local go = a < old
    if not go and a < hold then
      local s = tonumber(redis.call('HGET', KEYS[1], t) or '0')
      local h = tonumber(redis.call('HGET', KEYS[2], t) or '0')
      go = s + h <= 1
    end
    if go then
      redis.call('HDEL', KEYS[1], t)
      redis.call('HDEL', KEYS[2], t)
      redis.call('HDEL', KEYS[3], t)
      removed = removed + 1
    end
  end
end
return removed
";

/// Drops up to 1000 learned-message records older than ARGV[1]. KEYS: seenat, seen.
const PURGE_SEEN: &str = r"
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)
for _, k in ipairs(old) do redis.call('HDEL', KEYS[2], k) end
if #old > 0 then redis.call('ZREM', KEYS[1], unpack(old)) end
return #old
";

/// A Redis Bayes store.
pub struct RedisStore {
    pub(super) conn: ConnectionManager,
    learn: redis::Script,
    purge: redis::Script,
    purge_seen: redis::Script,
}

pub(super) fn key(user: &str, what: &str) -> String {
    format!("bayes:{{{user}}}:{what}")
}

const USERS: &str = "bayes:users";

pub(super) fn field(t: u64) -> [u8; 8] {
    t.to_be_bytes()
}

impl RedisStore {
    /// The store at `url` (`redis://host:port/db`), connecting on first use.
    pub fn new(url: &str) -> Result<RedisStore, BayesError> {
        let fail = |reason: String| BayesError::Open {
            url: url.to_string(),
            reason,
        };
        let client = redis::Client::open(url).map_err(|e| fail(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| fail(e.to_string()))?;
        Ok(RedisStore {
            conn,
            learn: redis::Script::new(LEARN),
            purge: redis::Script::new(PURGE),
            purge_seen: redis::Script::new(PURGE_SEEN),
        })
    }

    async fn run_learn(
        &self,
        user: &str,
        msg: &MessageKey,
        what: &str,
        tokens: &[u64],
    ) -> Result<Learned, BayesError> {
        let mut inv = self.learn.prepare_invoke();
        for k in ["vars", "s", "h", "a", "seen"] {
            inv.key(key(user, k));
        }
        inv.key(USERS)
            .key(key(user, "seenat"))
            .arg(&msg[..])
            .arg(what)
            .arg(now())
            .arg(user);
        for t in tokens {
            inv.arg(&field(*t)[..]);
        }
        let mut conn = self.conn.clone();
        let out: String = inv.invoke_async(&mut conn).await?;
        Ok(match out.as_str() {
            "new" => Learned::New,
            "unchanged" => Learned::Unchanged,
            "flipped" => Learned::Flipped,
            "forgotten" => Learned::Forgotten,
            _ => Learned::NotLearned,
        })
    }

    /// Runs the purge script over `tokens` in batches.
    async fn purge_tokens(
        &self,
        user: &str,
        tokens: &[Vec<u8>],
        cutoff: i64,
        hapax_cutoff: i64,
    ) -> Result<u64, BayesError> {
        let mut removed = 0;
        for batch in tokens.chunks(PURGE_BATCH) {
            let mut inv = self.purge.prepare_invoke();
            inv.key(key(user, "s"))
                .key(key(user, "h"))
                .key(key(user, "a"))
                .arg(cutoff)
                .arg(hapax_cutoff);
            for t in batch {
                inv.arg(&t[..]);
            }
            let mut conn = self.conn.clone();
            let n: u64 = inv.invoke_async(&mut conn).await?;
            removed += n;
        }
        Ok(removed)
    }

    /// Every token of `user` with the time it was last learned.
    async fn ages(&self, user: &str) -> Result<Vec<(Vec<u8>, i64)>, BayesError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, page): (u64, Vec<(Vec<u8>, i64)>) = redis::cmd("HSCAN")
                .arg(key(user, "a"))
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            out.extend(page);
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }
}

impl TokenStore for RedisStore {
    async fn totals(&self, user: &str) -> Result<(u64, u64), BayesError> {
        let mut conn = self.conn.clone();
        let (s, h): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(key(user, "vars"))
            .arg("spam")
            .arg("ham")
            .query_async(&mut conn)
            .await?;
        Ok((s.unwrap_or(0).max(0) as u64, h.unwrap_or(0).max(0) as u64))
    }

    async fn counts(&self, user: &str, tokens: &[u64]) -> Result<Vec<(u32, u32)>, BayesError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<[u8; 8]> = tokens.iter().map(|t| field(*t)).collect();
        let mut pipe = redis::pipe();
        for class in ["s", "h"] {
            let cmd = pipe.cmd("HMGET").arg(key(user, class));
            for f in &fields {
                cmd.arg(&f[..]);
            }
        }
        let mut conn = self.conn.clone();
        let (s, h): (Vec<Option<i64>>, Vec<Option<i64>>) = pipe.query_async(&mut conn).await?;
        let n = |v: Option<i64>| v.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
        Ok(s.into_iter().zip(h).map(|(s, h)| (n(s), n(h))).collect())
    }

    async fn learn(
        &self,
        user: &str,
        key: &MessageKey,
        class: Class,
        tokens: &[u64],
    ) -> Result<Learned, BayesError> {
        let what = match class {
            Class::Spam => "s",
            Class::Ham => "h",
        };
        self.run_learn(user, key, what, tokens).await
    }

    async fn forget(
        &self,
        user: &str,
        key: &MessageKey,
        tokens: &[u64],
    ) -> Result<Learned, BayesError> {
        self.run_learn(user, key, "f", tokens).await
    }

    async fn token_count(&self, user: &str) -> Result<u64, BayesError> {
        let mut conn = self.conn.clone();
        let n: u64 = redis::cmd("HLEN")
            .arg(key(user, "a"))
            .query_async(&mut conn)
            .await?;
        Ok(n)
    }

    async fn users(&self) -> Result<Vec<String>, BayesError> {
        let mut conn = self.conn.clone();
        let users: Vec<String> = redis::cmd("SMEMBERS")
            .arg(USERS)
            .query_async(&mut conn)
            .await?;
        Ok(users)
    }

    async fn purge(&self, user: &str, purge: &Purge) -> Result<u64, BayesError> {
        let cutoff = |age: u64| {
            if age == 0 {
                i64::MIN
            } else {
                purge.now.saturating_sub(age.min(i64::MAX as u64) as i64)
            }
        };
        let (old, hold) = (cutoff(purge.max_age), cutoff(purge.hapax_max_age));
        let mut removed = 0;
        if old > i64::MIN || hold > i64::MIN {
            let due: Vec<Vec<u8>> = self
                .ages(user)
                .await?
                .into_iter()
                .filter(|(_, a)| *a < old.max(hold))
                .map(|(t, _)| t)
                .collect();
            removed += self.purge_tokens(user, &due, old, hold).await?;
        }
        if purge.seen_max_age > 0 {
            let before = cutoff(purge.seen_max_age);
            loop {
                let mut inv = self.purge_seen.prepare_invoke();
                inv.key(key(user, "seenat"))
                    .key(key(user, "seen"))
                    .arg(before);
                let mut conn = self.conn.clone();
                let n: u64 = inv.invoke_async(&mut conn).await?;
                if n < 1000 {
                    break;
                }
            }
        }
        if purge.max_tokens > 0 && self.token_count(user).await? > purge.max_tokens {
            let mut ages = self.ages(user).await?;
            let excess = ages.len().saturating_sub(purge.max_tokens as usize);
            ages.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            ages.truncate(excess);
            if let Some(newest) = ages.last().map(|(_, a)| *a) {
                let due: Vec<Vec<u8>> = ages.into_iter().map(|(t, _)| t).collect();
                removed += self
                    .purge_tokens(user, &due, newest.saturating_add(1), i64::MIN)
                    .await?;
            }
        }
        Ok(removed)
    }
}
