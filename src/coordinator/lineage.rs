//! Shard lineage: which shards may be read now, given which are done.

/// One shard as the stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardNode {
    /// Shard id.
    pub id: String,
    /// Parent shard ids: none for an original shard, one after a split,
    /// two after a merge (Kinesis).
    pub parents: Vec<String>,
}

/// The shards that may start now, in description order: not done, not
/// already being read, and every parent either done or no longer described
/// (a parent that aged out of the stream has nothing left to read).
///
/// `done` is true for shards read to their end (this run) or recorded as
/// finished (earlier runs); `active` for shards being read now.
pub fn ready_shards(
    nodes: &[ShardNode],
    done: impl Fn(&str) -> bool,
    active: impl Fn(&str) -> bool,
) -> Vec<&str> {
    let described = |id: &str| nodes.iter().any(|node| node.id == id);
    nodes
        .iter()
        .filter(|node| !done(&node.id) && !active(&node.id))
        .filter(|node| {
            node.parents
                .iter()
                .all(|parent| done(parent) || !described(parent))
        })
        .map(|node| node.id.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn node(id: &str, parents: &[&str]) -> ShardNode {
        ShardNode {
            id: id.into(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn children_wait_for_every_parent() {
        // a splits into b and c; b and c merge into d.
        let nodes = [
            node("a", &[]),
            node("b", &["a"]),
            node("c", &["a"]),
            node("d", &["b", "c"]),
        ];
        let mut done = HashSet::new();
        let ready = |done: &HashSet<&str>| ready_shards(&nodes, |id| done.contains(id), |_| false);
        assert_eq!(ready(&done), ["a"]);
        done.insert("a");
        assert_eq!(ready(&done), ["b", "c"]);
        done.insert("b");
        assert_eq!(ready(&done), ["c"]);
        done.insert("c");
        assert_eq!(ready(&done), ["d"]);
    }

    #[test]
    fn vanished_parents_do_not_block() {
        let nodes = [node("child", &["expired-parent"])];
        assert_eq!(ready_shards(&nodes, |_| false, |_| false), ["child"]);
    }

    #[test]
    fn active_shards_are_not_started_twice() {
        let nodes = [node("a", &[])];
        assert!(ready_shards(&nodes, |_| false, |id| id == "a").is_empty());
    }
}
