//! Packers: scores that pick the node a pod fills best, from vector bin packing.
//!
//! kube's scorers look at one resource at a time and average. A pod that needs much
//! memory and little CPU, though, fits best on a node with much memory and little CPU
//! left, and a node left with CPU but no memory is wasted. The packers here look at both
//! resources at once, each as a fraction of the node's capacity:
//!
//! - **Best fit by the L2 norm**: place the pod where the free amounts left afterwards,
//!   as a vector, are shortest. The node ends nearest to full in both resources.
//! - **Dot product**: the largest `Σ_d demand_d · free_d`, the demand aligned with the
//!   free amounts, as Tetris (Grandl et al., SIGCOMM 2014) aligns tasks with machines.
//!   Choosing a node for a pod, it favours the roomier nodes. Choosing a pod for a node,
//!   as batch mode does, it picks the one that uses most of what the node has left, in
//!   the proportions the node has it.
//!
//! Both are scores where the higher is better, like kube's, but real numbers: a packer
//! needs finer steps than kube's 0 to 100 to tell two nearly full nodes apart.
//!
//! See also Panigrahy et al., *Heuristics for Vector Bin Packing* (Microsoft Research,
//! 2011), which compares these and the bin-centric order [`super::cluster`]'s batch mode
//! uses.

use super::model::{Amounts, Resource};

/// `amount` as a fraction of `capacity`: 0 for a capacity of 0.
fn fraction(amount: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        0.0
    } else {
        amount as f64 / capacity as f64
    }
}

// ANCHOR: l2
/// Best fit's score for placing a pod that leaves `free_after` of `allocatable`: minus
/// the length of the free vector, each resource a fraction of its capacity. A node the
/// pod fills exactly scores 0, the highest.
pub fn best_fit_l2(free_after: Amounts, allocatable: Amounts) -> f64 {
    let squares: f64 = Resource::ALL
        .iter()
        .map(|&r| fraction(free_after.get(r), allocatable.get(r)).powi(2))
        .sum();
    -squares.sqrt()
}
// ANCHOR_END: l2

// ANCHOR: dot
/// The dot product's score for a pod asking `demand` of a node with `free` of
/// `allocatable` left: `Σ_d demand_d · free_d`, each a fraction of the capacity.
pub fn dot_product(demand: Amounts, free: Amounts, allocatable: Amounts) -> f64 {
    Resource::ALL
        .iter()
        .map(|&r| {
            let capacity = allocatable.get(r);
            fraction(demand.get(r), capacity) * fraction(free.get(r), capacity)
        })
        .sum()
}
// ANCHOR_END: dot

/// How much of `capacity` `amounts` fills, summed over the resources as fractions: the
/// size batch mode sorts and chooses by.
pub fn size(amounts: Amounts, capacity: Amounts) -> f64 {
    Resource::ALL
        .iter()
        .map(|&r| fraction(amounts.get(r), capacity.get(r)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: Amounts = Amounts::new(4000, 16 << 30);

    #[test]
    fn best_fit_prefers_the_node_the_pod_fills_exactly() {
        let exact = best_fit_l2(Amounts::new(0, 0), NODE);
        let half = best_fit_l2(Amounts::new(2000, 8 << 30), NODE);
        assert_eq!(exact, 0.0);
        assert!(exact > half);
        // Half of each resource left is a vector of length √(½² + ½²).
        assert!((half + 0.5f64.hypot(0.5)).abs() < 1e-12);
    }

    #[test]
    fn dot_product_prefers_free_amounts_shaped_like_the_demand() {
        let memory_heavy = Amounts::new(500, 8 << 30);
        let memory_left = Amounts::new(1000, 12 << 30);
        let cpu_left = Amounts::new(3000, 9 << 30);
        assert!(
            dot_product(memory_heavy, memory_left, NODE)
                > dot_product(memory_heavy, cpu_left, NODE)
        );
    }

    #[test]
    fn a_zero_capacity_counts_as_nothing_rather_than_dividing_by_zero() {
        let none = Amounts::new(0, 0);
        assert_eq!(best_fit_l2(none, none), 0.0);
        assert_eq!(size(Amounts::new(5, 5), none), 0.0);
    }
}
