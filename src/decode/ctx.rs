//! The state of one message's decoding: the part list, the counters every limit is checked
//! against, and the reasons for UNCHECKED. Formats add parts only through [`Ctx::add`], so no
//! format can get around a limit.

use super::detect;
use super::limits::Limits;
use super::part::{Part, PartData, read_capped};
use super::{BadHeader, Unchecked};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a format knows about a part it found.
pub struct NewPart<'a> {
    pub parent: Option<usize>,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    /// The size the container says the part was compressed to (for the ratio check).
    pub compressed_size: Option<u64>,
    pub encrypted: bool,
    pub src: &'a mut dyn Read,
}

pub struct Ctx<'a> {
    pub limits: &'a Limits,
    pub dir: &'a Path,
    pub parts: Vec<Part>,
    pub unchecked: Vec<Unchecked>,
    pub bad_header: Vec<BadHeader>,
    /// How deep [`super::salvage`] is in damage inside damage.
    pub salvage_depth: usize,
    children: Vec<usize>,
    top: usize,
    decoded: u64,
    quota: u64,
    deadline: Instant,
}

impl<'a> Ctx<'a> {
    pub fn new(limits: &'a Limits, dir: &'a Path, message_size: u64) -> Ctx<'a> {
        Ctx {
            limits,
            dir,
            parts: Vec::new(),
            unchecked: Vec::new(),
            bad_header: Vec::new(),
            salvage_depth: 0,
            children: Vec::new(),
            top: 0,
            decoded: 0,
            quota: limits.expansion_quota(message_size),
            deadline: Instant::now() + Duration::from_millis(limits.time_budget_ms),
        }
    }

    /// Records that a limit stopped a branch (UNCHECKED, minor 2). Each reason once.
    pub fn over_limits(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        if !self.unchecked.iter().any(|u| u.reason == reason) {
            self.unchecked.push(Unchecked { minor: 2, reason });
        }
    }

    /// Records an encrypted part (UNCHECKED, minor 1).
    pub fn encrypted(&mut self, what: impl Into<String>) {
        let reason = what.into();
        if !self.unchecked.iter().any(|u| u.reason == reason) {
            self.unchecked.push(Unchecked { minor: 1, reason });
        }
    }

    /// Records a bad header finding.
    pub fn bad_header(&mut self, minor: u8, detail: impl Into<String>) {
        let detail = detail.into();
        if !self
            .bad_header
            .iter()
            .any(|b| b.minor == minor && b.detail == detail)
        {
            self.bad_header.push(BadHeader { minor, detail });
        }
    }

    /// True once the time budget is spent (and records it).
    pub fn out_of_time(&mut self) -> bool {
        if Instant::now() > self.deadline {
            self.over_limits("time budget for decoding exceeded");
            true
        } else {
            false
        }
    }

    fn depth_of(&self, parent: Option<usize>) -> usize {
        parent.map_or(1, |p| self.parts[p].depth + 1)
    }

    /// True when a part under `parent` would still be within MAXLEVELS and MAXFILES; records
    /// the limit otherwise.
    pub fn room_for(&mut self, parent: Option<usize>) -> bool {
        if self.depth_of(parent) > self.limits.max_levels {
            self.over_limits(format!(
                "nesting deeper than MAXLEVELS ({})",
                self.limits.max_levels
            ));
            return false;
        }
        if self.parts.len() >= self.limits.max_files {
            self.over_limits(format!(
                "more than MAXFILES ({}) parts",
                self.limits.max_files
            ));
            return false;
        }
        !self.out_of_time()
    }

    /// Reads a new part and appends it; `None` when a limit refused it (recorded).
    pub fn add(&mut self, p: NewPart<'_>) -> Option<usize> {
        if !self.room_for(p.parent) {
            return None;
        }
        let left = self.quota.saturating_sub(self.decoded);
        if left == 0 {
            self.over_limits("expansion quota exceeded");
            return None;
        }
        let cap = self.limits.max_part_size.min(left);
        let read = match read_capped(p.src, cap, self.limits.memory_part_limit, self.dir) {
            Ok(r) => r,
            Err(e) => {
                // Our own spool failed: the part cannot be checked at all.
                self.over_limits(format!("cannot store a decoded part: {e}"));
                return None;
            }
        };
        // A stream that failed part-way (bad checksum, cut data): the part keeps what was read
        // and, like its container, is marked undecipherable.
        let damaged = read.error.as_ref().map(|e| format!("read error: {e}"));
        if let (Some(why), Some(parent)) = (&damaged, p.parent) {
            self.parts[parent].undecipherable = Some(why.clone());
        }
        self.decoded += read.size;
        if read.truncated {
            if cap == left && left < self.limits.max_part_size {
                self.over_limits("expansion quota exceeded");
            } else {
                self.over_limits(format!(
                    "part larger than max_part_size ({})",
                    self.limits.max_part_size
                ));
            }
        }
        if let Some(c) = p.compressed_size
            && read.size > self.limits.ratio_grace_bytes
            && read.size / c.max(1) > self.limits.max_compression_ratio
        {
            self.over_limits(format!(
                "compression ratio above {}",
                self.limits.max_compression_ratio
            ));
        }
        let types = detect::with_macro_type(&read.data, detect::detect(&read.data));
        let depth = self.depth_of(p.parent);
        let parent_level = p.parent.map(|i| self.parts[i].level.clone());
        let nth = match p.parent {
            Some(i) => {
                self.children[i] += 1;
                self.children[i]
            }
            None => {
                self.top += 1;
                self.top
            }
        };
        let level = match parent_level {
            Some(l) => format!("{l}/{nth}"),
            None => nth.to_string(),
        };
        if p.encrypted {
            self.encrypted(format!(
                "encrypted part {:?}",
                p.name.as_deref().unwrap_or("")
            ));
        }
        self.parts.push(Part {
            id: format!("p{:03}", self.parts.len() + 1),
            level,
            parent: p.parent,
            depth,
            name: p.name,
            other_names: Vec::new(),
            mime_type: p.mime_type,
            types,
            size: read.size,
            digest: read.digest,
            encrypted: p.encrypted,
            undecipherable: damaged,
            opened: false,
            data: read.data,
        });
        self.children.push(0);
        Some(self.parts.len() - 1)
    }

    /// Adds a part at the top of the tree (a whole message or file).
    pub fn add_top(&mut self, name: Option<String>, src: &mut dyn Read) -> Option<usize> {
        self.add(NewPart {
            parent: None,
            name,
            mime_type: None,
            compressed_size: None,
            encrypted: false,
            src,
        })
    }

    /// Adds `bytes` as they are under `parent` (or at the top), with no name or type: what
    /// damaged MIME left, or what salvage found in it.
    pub fn add_bytes(&mut self, parent: Option<usize>, bytes: &[u8]) -> Option<usize> {
        let mut src = bytes;
        self.add(NewPart {
            parent,
            name: None,
            mime_type: None,
            compressed_size: None,
            encrypted: false,
            src: &mut src,
        })
    }

    /// Adds an entry read out of container `parent` (no MIME type, no ratio check).
    pub fn add_entry(
        &mut self,
        parent: usize,
        name: Option<String>,
        src: &mut dyn Read,
    ) -> Option<usize> {
        self.add(NewPart {
            parent: Some(parent),
            name,
            mime_type: None,
            compressed_size: None,
            encrypted: false,
            src,
        })
    }

    /// Records an encrypted entry of container `parent` that cannot be read: an empty part,
    /// encrypted and undecipherable, so banned rules still see its name.
    pub fn add_encrypted(&mut self, parent: usize, name: String, why: &str) {
        let mut empty: &[u8] = &[];
        if let Some(p) = self.add(NewPart {
            parent: Some(parent),
            name: Some(name),
            mime_type: None,
            compressed_size: None,
            encrypted: true,
            src: &mut empty,
        }) {
            self.parts[p].undecipherable = Some(why.to_string());
        }
    }

    /// Adds a container node that has no bytes of its own (a MIME multipart).
    pub fn add_node(
        &mut self,
        parent: Option<usize>,
        mime_type: Option<String>,
        name: Option<String>,
    ) -> Option<usize> {
        let mut empty: &[u8] = &[];
        let idx = self.add(NewPart {
            parent,
            name,
            mime_type,
            compressed_size: None,
            encrypted: false,
            src: &mut empty,
        })?;
        self.parts[idx].types.clear();
        self.parts[idx].opened = true;
        Some(idx)
    }

    /// Takes a part's bytes out so a format can read them while adding children.
    pub fn take_data(&mut self, idx: usize) -> PartData {
        std::mem::replace(
            &mut self.parts[idx].data,
            PartData::Memory(super::held::Bytes::default()),
        )
    }

    /// Puts them back.
    pub fn put_data(&mut self, idx: usize, data: PartData) {
        self.parts[idx].data = data;
    }
}
