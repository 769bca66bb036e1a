//! One layer's pool of fixed-size blocks: reference counts (blocks shared by
//! forked sequences), a free list, per-slot RoPE positions and the occupancy
//! counters the store's accounting is built on. Bookkeeping only: the K/V
//! payload lives elsewhere (host vectors or device buffers) and is indexed by
//! the same global slot numbers, `block * block_size + offset`.

/// Blocks added when a pool first grows, and the least it grows by.
const MIN_GROWTH: usize = 8;

/// Bookkeeping of one layer's blocks.
#[derive(Debug, Clone)]
pub(crate) struct BlockPool {
    block_size: usize,
    /// Rows referencing each block; 0 = free.
    refcount: Vec<u32>,
    /// Occupied slots of each block: the live entries of the rows holding it
    /// (every sharer holds the same entries of a block: writes and shrinks
    /// copy a shared block first).
    fill: Vec<u32>,
    /// Free blocks, popped from the end (lowest index first after growth).
    free: Vec<u32>,
    /// RoPE position of the entry in each slot.
    positions: Vec<u32>,
    /// Σ `fill` over allocated blocks.
    resident: u64,
    /// Blocks with `refcount > 0`.
    allocated: u64,
}

impl BlockPool {
    pub(crate) fn new(block_size: usize) -> Self {
        Self {
            block_size,
            refcount: Vec::new(),
            fill: Vec::new(),
            free: Vec::new(),
            positions: Vec::new(),
            resident: 0,
            allocated: 0,
        }
    }

    /// Blocks the payload must be able to hold.
    pub(crate) fn capacity(&self) -> usize {
        self.refcount.len()
    }

    pub(crate) fn resident(&self) -> u64 {
        self.resident
    }

    pub(crate) fn allocated(&self) -> u64 {
        self.allocated
    }

    pub(crate) fn refcount(&self, block: u32) -> u32 {
        self.refcount[block as usize]
    }

    pub(crate) fn fill(&self, block: u32) -> u32 {
        self.fill[block as usize]
    }

    pub(crate) fn free_blocks(&self) -> &[u32] {
        &self.free
    }

    pub(crate) fn position(&self, slot: u32) -> u32 {
        self.positions[slot as usize]
    }

    pub(crate) fn set_position(&mut self, slot: u32, pos: u32) {
        self.positions[slot as usize] = pos;
    }

    /// A fresh block with refcount 1 and nothing occupied; grows the pool by
    /// ×1.5 when the free list is empty.
    pub(crate) fn alloc(&mut self) -> u32 {
        if self.free.is_empty() {
            let old = self.capacity();
            let new = (old + old / 2).max(old + MIN_GROWTH);
            self.refcount.resize(new, 0);
            self.fill.resize(new, 0);
            self.positions.resize(new * self.block_size, 0);
            self.free.extend((old as u32..new as u32).rev());
        }
        let block = self.free.pop().expect("free list refilled above");
        self.refcount[block as usize] = 1;
        self.fill[block as usize] = 0;
        self.allocated += 1;
        block
    }

    pub(crate) fn incref(&mut self, block: u32) {
        self.refcount[block as usize] += 1;
    }

    /// Drop one reference; a block nobody references goes back to the free
    /// list and its occupied slots stop counting.
    pub(crate) fn decref(&mut self, block: u32) {
        let b = block as usize;
        debug_assert!(self.refcount[b] > 0, "decref of free block {block}");
        self.refcount[b] -= 1;
        if self.refcount[b] == 0 {
            self.resident -= u64::from(self.fill[b]);
            self.fill[b] = 0;
            self.allocated -= 1;
            self.free.push(block);
        }
    }

    /// Mark slots `0..occupied` of `block` as holding entries (never lowers
    /// the count: see `set_fill` for shrinking).
    pub(crate) fn grow_fill(&mut self, block: u32, occupied: u32) {
        let f = &mut self.fill[block as usize];
        if occupied > *f {
            self.resident += u64::from(occupied - *f);
            *f = occupied;
        }
    }

    /// Set the occupied slots of an exclusively owned block.
    pub(crate) fn set_fill(&mut self, block: u32, occupied: u32) {
        let f = &mut self.fill[block as usize];
        self.resident = self.resident - u64::from(*f) + u64::from(occupied);
        *f = occupied;
    }

    /// Copy the positions of the first `n` slots of `src` into `dst`.
    pub(crate) fn copy_positions(&mut self, src: u32, dst: u32, n: u32) {
        let bs = self.block_size;
        let (s, d) = (src as usize * bs, dst as usize * bs);
        self.positions.copy_within(s..s + n as usize, d);
    }
}
