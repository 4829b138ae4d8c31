//! The in-memory [`Backend`]: ordered maps behind a lock. For tests and benchmarks; nothing survives the process.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::StoreError;
use crate::tiled::{Backend, Column, DeleteRange, Put, Row};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// Ordered in-memory column families.
#[derive(Default)]
pub struct MemoryBackend {
    columns: RwLock<BTreeMap<Column, Map>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn read<T>(&self, column: Column, f: impl FnOnce(Option<&Map>) -> T) -> T {
        // Writes apply whole under the write lock, so even a poisoned lock holds consistent maps.
        let columns = self.columns.read().unwrap_or_else(|p| p.into_inner());
        f(columns.get(&column))
    }
}

impl Backend for MemoryBackend {
    fn write_batch(&self, puts: &[Put<'_>], deletes: &[DeleteRange<'_>]) -> Result<(), StoreError> {
        let mut columns = self.columns.write().unwrap_or_else(|p| p.into_inner());
        for &(column, key, value) in puts {
            columns
                .entry(column)
                .or_default()
                .insert(key.to_vec(), value.to_vec());
        }
        for &(column, from, to) in deletes {
            if let Some(map) = columns.get_mut(&column) {
                map.retain(|k, _| !(k.as_slice() >= from && k.as_slice() < to));
            }
        }
        Ok(())
    }

    fn get_many<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        Ok(self.read(column, |map| {
            keys.iter()
                .map(|k| map.and_then(|m| m.get(k.as_ref()).cloned()))
                .collect()
        }))
    }

    fn last(&self, column: Column) -> Result<Option<Row>, StoreError> {
        Ok(self.read(column, |map| {
            map.and_then(|m| m.last_key_value())
                .map(|(k, v)| (k.clone(), v.clone()))
        }))
    }

    fn scan(&self, column: Column, from: &[u8], limit: usize) -> Result<Vec<Row>, StoreError> {
        Ok(self.read(column, |map| {
            map.map(|m| {
                m.range(from.to_vec()..)
                    .take(limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
        }))
    }
}
