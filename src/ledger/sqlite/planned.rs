//! The addresses of deliveries as they were planned, kept in memory for their first claim.
//!
//! A claim of SMS or WeCom deliveries reads each one's job, address and attempts from its row
//! (`journal::pending_after`): a b-tree search per delivery, a fifth of `disclose`'s CPU while it
//! sends a million SMS (BENCHMARKS.md, session 16). Planning has those values in hand as it
//! writes the rows, so it keeps them here, and a claim reads only the ids from the partial index
//! of pending deliveries — which still decides what is claimed, as before — and takes each one's
//! job and address from here instead of from its row.
//!
//! What is kept is true of a delivery only until it is claimed once (then its attempts move,
//! and it may be retried): every claim marks what it took as taken, whichever way it read it, and
//! what is taken is never served from here again. It is true only of what this connection wrote:
//! when another connection commits to the ledger (`PRAGMA data_version` moves: another process on
//! the same file, a `disclose cancel`), everything kept is dropped, and claims read rows again.
//! A delivery not found here is read from its row, as before, so what is kept can always be less
//! than what was planned: planned blocks past [`MAX_KEPT`] push out the oldest.
//!
//! SPEC §7 recommends that a million-recipient notice never hold a million of anything in
//! memory. This does, for that notice: its numbers, one after another in one string (about 22 MB,
//! `dispatch`'s peak 117 MB instead of 97). It is bounded by [`MAX_KEPT`] whatever the size of
//! the fan-out, not by the fan-out, and it took a tenth off `disclose`'s CPU per SMS call while
//! sending (BENCHMARKS.md, session 16).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::job::ChannelKind;

/// At most this many deliveries are kept (about 22 bytes each: 22 MB for a million).
const MAX_KEPT: usize = 2_000_000;

/// The deliveries one statement planned for one channel, as planning wrote them: consecutive
/// rows of one job with one due time (the ones left out were planned `skipped`).
pub(super) struct Block {
    pub channel: ChannelKind,
    pub job: Arc<str>,
    pub due_at: i64,
    /// The first delivery's id; `offsets` are from it, ascending.
    first: i64,
    offsets: Vec<u32>,
    /// Where each delivery's address ends in `text`, the addresses one after another.
    ends: Vec<u32>,
    text: String,
    /// The deliveries without an address (letters that go by hand), by position.
    none: Vec<u32>,
    /// Deliveries before this one have been claimed, or passed by a claim.
    taken: usize,
    /// Where the last delivery found was, plus one: a claim asks for them in order.
    next: Cell<usize>,
}

impl Block {
    pub fn new(channel: ChannelKind, job: Arc<str>, due_at: i64) -> Block {
        Block {
            channel,
            job,
            due_at,
            first: 0,
            offsets: Vec::new(),
            ends: Vec::new(),
            text: String::new(),
            none: Vec::new(),
            taken: 0,
            next: Cell::new(0),
        }
    }

    /// Adds the next delivery planned (ids ascending). False when it cannot be kept in this block
    /// (ids more than `u32::MAX` apart, addresses past 4 GB): the caller starts another.
    pub fn push(&mut self, id: i64, address: Option<&str>) -> bool {
        if self.offsets.is_empty() {
            self.first = id;
        }
        let text = address.unwrap_or("");
        let (Ok(offset), Ok(end)) = (
            u32::try_from(id - self.first),
            u32::try_from(self.text.len() + text.len()),
        ) else {
            return false;
        };
        if self.offsets.last().is_some_and(|&last| offset <= last) {
            return false;
        }
        if address.is_none() {
            self.none.push(self.offsets.len() as u32);
        }
        self.offsets.push(offset);
        self.text.push_str(text);
        self.ends.push(end);
        true
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    fn last(&self) -> i64 {
        self.first + i64::from(*self.offsets.last().unwrap_or(&0))
    }

    /// The position of `id` among the deliveries not yet taken.
    fn position(&self, id: i64) -> Option<usize> {
        let offset = u32::try_from(id - self.first).ok()?;
        super::position_hinted(&self.offsets, self.taken, &self.next, &offset)
    }

    fn address(&self, i: usize) -> Option<&str> {
        if self.none.binary_search(&(i as u32)).is_ok() {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..self.ends[i] as usize])
    }
}

/// A delivery as planned: its job, due time and address.
pub(super) struct Found<'a> {
    pub job: &'a Arc<str>,
    pub due_at: i64,
    pub address: Option<&'a str>,
}

/// The deliveries kept, by their block's first id.
#[derive(Default)]
pub(super) struct Planned {
    /// `PRAGMA data_version` of the connection when what is kept was last known true.
    version: Option<i64>,
    blocks: BTreeMap<i64, Block>,
    kept: usize,
}

impl Planned {
    /// Whether anything of `channel` is kept.
    pub fn has(&self, channel: ChannelKind) -> bool {
        self.blocks.values().any(|b| b.channel == channel)
    }

    /// Before it is used or added to, in a transaction: `version` is the connection's
    /// `PRAGMA data_version` now. Another connection has committed since it was last known if it
    /// moved, and then nothing kept can be trusted.
    pub fn check(&mut self, version: i64) {
        if self.version != Some(version) {
            if self.version.is_some() {
                self.blocks.clear();
                self.kept = 0;
            }
            self.version = Some(version);
        }
    }

    /// Keeps the blocks a committed plan wrote (checked at `version`, in its transaction),
    /// pushing out the oldest past [`MAX_KEPT`].
    pub fn keep(&mut self, version: i64, blocks: Vec<Block>) {
        self.check(version);
        for b in blocks {
            if b.len() == 0 || b.len() > MAX_KEPT {
                continue;
            }
            self.kept += b.len();
            self.blocks.insert(b.first, b);
        }
        while self.kept > MAX_KEPT {
            let Some((_, oldest)) = self.blocks.pop_first() else {
                break;
            };
            self.kept -= oldest.len() - oldest.taken;
        }
    }

    /// The delivery `id` of `channel` as planned, if it is kept and not yet taken.
    pub fn find(&self, channel: ChannelKind, id: i64) -> Option<Found<'_>> {
        let (_, b) = self.blocks.range(..=id).next_back()?;
        if b.channel != channel || id > b.last() {
            return None;
        }
        let i = b.position(id)?;
        Some(Found {
            job: &b.job,
            due_at: b.due_at,
            address: b.address(i),
        })
    }

    /// Marks the deliveries of a claim taken (`ids` ascending), with any kept before them in
    /// their block that the claim passed; drops blocks all taken.
    pub fn take(&mut self, ids: &[i64]) {
        let (Some(&low), Some(&high)) = (ids.first(), ids.last()) else {
            return;
        };
        let from = self
            .blocks
            .range(..=low)
            .next_back()
            .map_or(low, |(&first, _)| first);
        let mut emptied = Vec::new();
        for (&first, b) in self.blocks.range_mut(from..=high) {
            // The claimed ids of this block: everything up to the last of them is taken.
            let last = b.last();
            let Some(&top) = ids.iter().rev().find(|&&id| id >= first && id <= last) else {
                continue;
            };
            let upto = u32::try_from(top - first).unwrap_or(u32::MAX);
            let now = b.offsets.partition_point(|&o| o <= upto);
            if now > b.taken {
                self.kept -= now - b.taken;
                b.taken = now;
            }
            if b.taken == b.len() {
                emptied.push(first);
            }
        }
        for first in emptied {
            self.blocks.remove(&first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(first: i64, n: i64, skip_every: i64) -> Block {
        let mut b = Block::new(ChannelKind::Sms, Arc::from("job"), 7);
        for id in first..first + n {
            if skip_every > 0 && id % skip_every == 0 {
                continue;
            }
            let address = (id % 10 != 3).then(|| format!("+86139{id:08}"));
            assert!(b.push(id, address.as_deref()));
        }
        b
    }

    #[test]
    fn a_kept_delivery_is_found_with_its_address_until_taken() {
        let mut p = Planned::default();
        p.keep(1, vec![block(100, 50, 7), block(1_000, 10, 0)]);
        let f = p.find(ChannelKind::Sms, 101).unwrap();
        assert_eq!(f.address, Some("+8613900000101"));
        assert_eq!((&**f.job, f.due_at), ("job", 7));
        assert_eq!(p.find(ChannelKind::Sms, 103).unwrap().address, None);
        // Planned skipped (not in the block), another channel, outside every block.
        assert!(p.find(ChannelKind::Sms, 105).is_none());
        assert!(p.find(ChannelKind::Wecom, 101).is_none());
        assert!(p.find(ChannelKind::Sms, 99).is_none());
        assert!(p.find(ChannelKind::Sms, 150).is_none());
        assert_eq!(
            p.find(ChannelKind::Sms, 1_009).unwrap().address,
            Some("+8613900001009")
        );

        // A claim of 101..=110 takes them and what it passed before them.
        p.take(&(101..=110).collect::<Vec<_>>());
        assert!(p.find(ChannelKind::Sms, 100).is_none());
        assert!(p.find(ChannelKind::Sms, 110).is_none());
        assert_eq!(
            p.find(ChannelKind::Sms, 111).unwrap().address,
            Some("+8613900000111")
        );
        // A claim across two blocks empties the first.
        p.take(&[149, 1_000]);
        assert!(p.find(ChannelKind::Sms, 120).is_none());
        assert!(p.find(ChannelKind::Sms, 1_000).is_none());
        assert!(p.find(ChannelKind::Sms, 1_001).is_some());
        assert_eq!(p.blocks.len(), 1);
        assert_eq!(p.kept, 9);
    }

    #[test]
    fn another_connections_commit_drops_everything_kept() {
        let mut p = Planned::default();
        p.keep(4, vec![block(1, 10, 0)]);
        p.check(4);
        assert!(p.find(ChannelKind::Sms, 5).is_some());
        p.check(5);
        assert!(p.find(ChannelKind::Sms, 5).is_none());
        assert_eq!(p.kept, 0);
        // A plan checked at an older version than what is kept drops it too, and is kept.
        p.keep(5, vec![block(20, 5, 0)]);
        p.keep(6, vec![block(40, 5, 0)]);
        assert!(p.find(ChannelKind::Sms, 21).is_none());
        assert!(p.find(ChannelKind::Sms, 41).is_some());
    }

    #[test]
    fn past_the_limit_the_oldest_blocks_go() {
        let mut p = Planned::default();
        p.keep(1, vec![block(1, 1_500_000, 0)]);
        p.keep(1, vec![block(2_000_000, 1_000_000, 0)]);
        assert!(p.find(ChannelKind::Sms, 10).is_none());
        assert!(p.find(ChannelKind::Sms, 2_000_010).is_some());
        assert_eq!(p.kept, 1_000_000);
    }
}
