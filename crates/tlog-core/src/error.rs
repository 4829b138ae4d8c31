//! The crate's two error types: [`VerifyError`] for proofs that do not check out, [`CoreError`] for misuse of the
//! building API. `Display` is written by hand because `thiserror`'s workspace pin carries `std`.

use core::fmt;

use crate::hash::Hash;

/// Why a proof was rejected (or why its expected length cannot be computed).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum VerifyError {
    /// An inclusion proof was asked of the empty tree, which has no leaves.
    EmptyTree,
    /// The leaf index is not inside the tree.
    IndexOutOfRange { index: u64, size: u64 },
    /// The second tree is smaller than the first: a log never shrinks.
    SizeDecreased { size1: u64, size2: u64 },
    /// The proof does not have the one length the sizes (and index) allow.
    WrongProofLength { expected: usize, actual: usize },
    /// The inclusion proof leads to a different root.
    RootMismatch { computed: Hash, expected: Hash },
    /// The consistency proof does not lead to the first (older) root.
    FirstRootMismatch { computed: Hash, expected: Hash },
    /// The consistency proof does not lead to the second (newer) root.
    SecondRootMismatch { computed: Hash, expected: Hash },
    /// Two trees of the same size must have the same root.
    EqualSizesDifferentRoots { root1: Hash, root2: Hash },
    /// The tree of size 0 has the root `SHA-256("")` and no other.
    NonEmptyRootForEmptyTree { root: Hash },
    /// A multiproof was asked for no leaves at all.
    NoLeaves,
    /// A multiproof's leaf indices name the same leaf twice.
    DuplicateIndex { index: u64 },
    /// A multiproof's leaf indices must be strictly increasing.
    UnsortedIndices { previous: u64, next: u64 },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::EmptyTree => write!(f, "the empty tree has no leaves to prove"),
            VerifyError::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is out of range for tree size {size}")
            }
            VerifyError::SizeDecreased { size1, size2 } => {
                write!(f, "tree size decreased from {size1} to {size2}")
            }
            VerifyError::WrongProofLength { expected, actual } => {
                write!(f, "proof has {actual} hashes, expected {expected}")
            }
            VerifyError::RootMismatch { computed, expected } => {
                write!(
                    f,
                    "inclusion proof leads to root {computed}, expected {expected}"
                )
            }
            VerifyError::FirstRootMismatch { computed, expected } => {
                write!(
                    f,
                    "consistency proof leads to first root {computed}, expected {expected}"
                )
            }
            VerifyError::SecondRootMismatch { computed, expected } => {
                write!(
                    f,
                    "consistency proof leads to second root {computed}, expected {expected}"
                )
            }
            VerifyError::EqualSizesDifferentRoots { root1, root2 } => {
                write!(
                    f,
                    "trees of equal size have different roots {root1} and {root2}"
                )
            }
            VerifyError::NonEmptyRootForEmptyTree { root } => {
                write!(f, "root {root} given for the empty tree")
            }
            VerifyError::NoLeaves => write!(f, "a multiproof needs at least one leaf"),
            VerifyError::DuplicateIndex { index } => {
                write!(f, "leaf index {index} is given twice")
            }
            VerifyError::UnsortedIndices { previous, next } => {
                write!(
                    f,
                    "leaf indices must increase, but {next} follows {previous}"
                )
            }
        }
    }
}

impl core::error::Error for VerifyError {}

/// Misuse of the building API: bad plan inputs, a wrong number of hashes, a full tree, a bad frontier.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CoreError {
    /// The sizes or the index are invalid for a proof (the same checks as verification applies).
    Invalid(VerifyError),
    /// A consistency proof from the empty tree has no content (RFC 9162 §2.1.4 requires `0 < first`).
    ConsistencyFromEmptyTree,
    /// [`ProofPlan::build`](crate::ProofPlan::build) got a different number of hashes than it has node ids.
    HashCountMismatch { expected: usize, actual: usize },
    /// The tree already holds `u64::MAX` leaves, the most a `u64` size can count.
    TreeFull,
    /// A frontier must hold one hash per set bit of the tree size.
    FrontierLength {
        size: u64,
        expected: usize,
        actual: usize,
    },
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Invalid(e) => fmt::Display::fmt(e, f),
            CoreError::ConsistencyFromEmptyTree => {
                write!(f, "a consistency proof needs a non-empty first tree")
            }
            CoreError::HashCountMismatch { expected, actual } => {
                write!(f, "got {actual} node hashes, expected {expected}")
            }
            CoreError::TreeFull => write!(f, "the tree is full ({} leaves)", u64::MAX),
            CoreError::FrontierLength {
                size,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "a tree of size {size} has {expected} frontier hashes, got {actual}"
                )
            }
        }
    }
}

// `Invalid` is transparent (its message is the inner one), so it reports no separate source.
impl core::error::Error for CoreError {}

impl From<VerifyError> for CoreError {
    fn from(e: VerifyError) -> Self {
        CoreError::Invalid(e)
    }
}
