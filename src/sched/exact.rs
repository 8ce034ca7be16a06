//! The exact optimum for small workloads: the fewest nodes that can hold them, as an
//! integer program.
//!
//! A packer that wastes little capacity is a packer that uses few nodes. The capacity
//! left over on the nodes used is `nodes · C − Σ_i r_i` in each resource, and `Σ_i r_i`,
//! what the pods ask for, is the same whatever the placement. So *minimising total
//! leftover capacity* and *minimising the nodes used* are the same goal, and the second
//! is the one an integer program states simply.
//!
//! With items `i = 1..n` of sizes `r_id` in the two dimensions `d` (CPU, memory),
//! identical nodes of capacity `C_d`, and `m` candidate nodes:
//!
//! ```text
//! minimise    Σ_j y_j
//! subject to  Σ_j x_ij = 1                  for each item i      (placed exactly once)
//!             Σ_i r_id · x_ij ≤ C_d · y_j   for each node j, d   (fits, and only on a
//!                                                                 node that is used)
//!             x_ij ≤ y_j                    for each i, j        (the same, tighter for
//!                                                                 the LP relaxation)
//!             y_j ≥ y_{j+1}                 for each j < m       (symmetry breaking)
//!             x_ij = 0                      for j > i            (symmetry breaking)
//!             x_ij, y_j ∈ {0, 1}
//! ```
//!
//! `x_ij = 1` puts item `i` on node `j`, and `y_j = 1` says node `j` is used. The two
//! symmetry-breaking rules remove placements that differ only by renumbering the nodes,
//! which a branch-and-bound solver would otherwise search again and again: the nodes
//! used come first, and item `i` (items sorted largest first) opens at most node `i`.
//! `m` is the count a first-fit-decreasing heuristic needs, which is enough by
//! construction; when it already meets the [lower bound](super::bounds), it is optimal
//! and no solver runs.
//!
//! Otherwise the optimum lies between the bound `L` and `m`, and the program is solved
//! with `Σ_j y_j` fixed, for `k = L, L + 1, …` in turn: with every `y_j = 1` it asks only
//! whether `k` nodes can hold the items, and the first `k` that can is the optimum. That
//! is the same program cut into questions a branch and bound answers faster, since each
//! searches only `k` nodes and stops at the first placement it finds; measured here it
//! was four to eight times faster than minimising `Σ_j y_j` over `m` nodes at once.
//!
//! The program is solved by [good_lp](https://docs.rs/good_lp) with its pure-Rust
//! [microlp](https://docs.rs/microlp) backend, a simplex with branch and bound: no C
//! library to install, but only small instances finish quickly, so [`optimum`] refuses
//! more than [`MAX_EXACT_ITEMS`]. Coefficients are divided by the greatest common divisor
//! of each resource (memory in bytes becomes memory in, say, 128 MiB units), so they stay
//! small integers that `f64` holds exactly; and the solver's answer is checked in integer
//! arithmetic before it is returned.

use std::time::Instant;

use good_lp::{
    Expression, ProblemVariables, ResolutionError, Solution, SolutionStatus, SolverModel, Variable,
    WithTimeLimit, constraint, microlp, variable,
};
use thiserror::Error;

use super::bounds::{BoundsError, lower_bounds};
use super::model::{Amounts, Resource};

/// The most items [`optimum`] takes. The program has about `n²/2` placement variables,
/// and proving that one node fewer cannot work is where branch and bound spends its
/// time. Measured in a debug build over the Caprara–Toth classes 1–9, eight to sixteen
/// seeds each: at 12 items the slowest took 0.06 s, at 14 items 0.2 s, at 15 items most
/// still took under 0.3 s but a class 1 instance took 2.2 s.
pub const MAX_EXACT_ITEMS: usize = 14;

/// How long the solver may search before [`optimum`] gives up, in seconds.
pub const SOLVER_TIME_LIMIT_SECONDS: f64 = 30.0;

/// Why the exact optimum could not be given.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExactError {
    /// More items than the solver is trusted to finish quickly.
    #[error(
        "{items} items is more than the exact solver takes ({max}); use the lower bounds for large workloads"
    )]
    TooManyItems {
        /// How many were given.
        items: usize,
        /// [`MAX_EXACT_ITEMS`].
        max: usize,
    },
    /// No placement exists.
    #[error(transparent)]
    Infeasible(#[from] BoundsError),
    /// The solver failed.
    #[error("solving the packing program for {items} items: {message}")]
    Solver {
        /// How many items.
        items: usize,
        /// The solver's own message.
        message: String,
    },
    /// The solver stopped at its time limit without proving its best placement optimal.
    #[error(
        "solving the packing program for {items} items: no proof of optimality within {seconds}s"
    )]
    TimeLimit {
        /// How many items.
        items: usize,
        /// [`SOLVER_TIME_LIMIT_SECONDS`].
        seconds: f64,
    },
    /// The solver's placement does not fit, or beats a lower bound: a solver bug, caught.
    #[error("the solver's placement of {items} items is wrong: {problem}")]
    WrongAnswer {
        /// How many items.
        items: usize,
        /// What is wrong with it.
        problem: String,
    },
}

/// The fewest nodes that hold the items, and a placement that achieves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Optimum {
    /// How many nodes.
    pub nodes: usize,
    /// The node of each item, in the order the items were given; nodes are numbered
    /// `0..nodes` in order of their first item.
    pub assignment: Vec<usize>,
}

/// First fit decreasing: items largest first (by their larger share of a node), each to
/// the first node it fits on. Returns each item's node, in the order the items were given.
pub fn first_fit_decreasing(sizes: &[Amounts], capacity: Amounts) -> Vec<usize> {
    let order = largest_first(sizes, capacity);
    let mut loads: Vec<Amounts> = Vec::new();
    let mut assignment = vec![0; sizes.len()];
    for i in order {
        let size = sizes[i];
        let node = match loads
            .iter()
            .position(|load| load.plus(size).fits_in(capacity))
        {
            Some(node) => node,
            None => {
                loads.push(Amounts::default());
                loads.len() - 1
            }
        };
        loads[node] = loads[node].plus(size);
        assignment[i] = node;
    }
    assignment
}

/// The items' indices, largest first by the larger of their two shares of a node.
fn largest_first(sizes: &[Amounts], capacity: Amounts) -> Vec<usize> {
    let share = |s: &Amounts| {
        Resource::ALL
            .iter()
            .map(|&r| s.get(r) as f64 / capacity.get(r).max(1) as f64)
            .fold(0.0, f64::max)
    };
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    // Only the heuristic's quality depends on this order, never correctness, so the
    // inexact float shares are fine here.
    order.sort_by(|&a, &b| share(&sizes[b]).total_cmp(&share(&sizes[a])));
    order
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Checks `assignment` in integer arithmetic: every node's items fit. Returns how many
/// nodes it uses.
pub fn check_assignment(
    sizes: &[Amounts],
    capacity: Amounts,
    assignment: &[usize],
) -> Result<usize, String> {
    if assignment.len() != sizes.len() {
        return Err(format!(
            "{} nodes given for {} items",
            assignment.len(),
            sizes.len()
        ));
    }
    let nodes = assignment.iter().map(|&j| j + 1).max().unwrap_or(0);
    let mut loads = vec![Amounts::default(); nodes];
    for (&size, &node) in sizes.iter().zip(assignment) {
        loads[node] = loads[node].plus(size);
    }
    for (node, load) in loads.iter().enumerate() {
        if !load.fits_in(capacity) {
            return Err(format!("node {node} holds {load}, over {capacity}"));
        }
    }
    let mut used = assignment.to_vec();
    used.sort_unstable();
    used.dedup();
    Ok(used.len())
}

/// Renumbers nodes `0..` in order of their first item.
fn renumber(assignment: &[usize]) -> Vec<usize> {
    let mut names: Vec<Option<usize>> = vec![None; assignment.iter().max().map_or(0, |m| m + 1)];
    let mut next = 0;
    assignment
        .iter()
        .map(|&j| {
            *names[j].get_or_insert_with(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// The fewest nodes of `capacity` that hold items of `sizes`, and a placement.
///
/// Refuses more than [`MAX_EXACT_ITEMS`] items and any item larger than a node.
pub fn optimum(sizes: &[Amounts], capacity: Amounts) -> Result<Optimum, ExactError> {
    let n = sizes.len();
    if n > MAX_EXACT_ITEMS {
        return Err(ExactError::TooManyItems {
            items: n,
            max: MAX_EXACT_ITEMS,
        });
    }
    let bound = lower_bounds(sizes, capacity)?.best;
    let heuristic = renumber(&first_fit_decreasing(sizes, capacity));
    let heuristic_nodes = heuristic.iter().map(|&j| j + 1).max().unwrap_or(0);
    let assignment = if heuristic_nodes <= bound {
        heuristic
    } else {
        solve(sizes, capacity, heuristic_nodes, bound)?
    };
    let wrong = |problem: String| ExactError::WrongAnswer { items: n, problem };
    let nodes = assignment.iter().map(|&j| j + 1).max().unwrap_or(0);
    check_assignment(sizes, capacity, &assignment).map_err(wrong)?;
    if nodes < bound {
        return Err(wrong(format!(
            "{nodes} nodes, below the lower bound {bound}"
        )));
    }
    Ok(Optimum { nodes, assignment })
}

/// Solves the integer program: with `m` nodes enough and `bound` needed, tries
/// `k = bound, bound + 1, …` nodes until a placement exists; returns each item's node,
/// renumbered.
fn solve(
    sizes: &[Amounts],
    capacity: Amounts,
    m: usize,
    bound: usize,
) -> Result<Vec<usize>, ExactError> {
    for k in bound..m {
        if let Some(assignment) = place_on(sizes, capacity, k)? {
            return Ok(renumber(&assignment));
        }
    }
    // Fewer than m nodes cannot hold the items, and the heuristic's m nodes do.
    Ok(renumber(&first_fit_decreasing(sizes, capacity)))
}

/// The program with `Σ_j y_j = k` fixed, so every `y_j` is 1: a placement of the items
/// on `k` nodes, or `None` when there is none.
fn place_on(
    sizes: &[Amounts],
    capacity: Amounts,
    k: usize,
) -> Result<Option<Vec<usize>>, ExactError> {
    let n = sizes.len();
    // Items largest first, so that "item i opens at most node i" cuts the most.
    let order = largest_first(sizes, capacity);
    let units: Vec<u64> = Resource::ALL
        .iter()
        .map(|&r| {
            sizes
                .iter()
                .fold(capacity.get(r), |g, s| gcd(g, s.get(r)))
                .max(1)
        })
        .collect();

    let mut vars = ProblemVariables::new();
    // place[p][j]: the p-th largest item on node j, only for j ≤ p.
    let place: Vec<Vec<Variable>> = (0..n)
        .map(|p| {
            (0..k.min(p + 1))
                .map(|_| vars.add(variable().binary()))
                .collect()
        })
        .collect();
    // Nothing to minimise: the first placement found answers the question.
    let mut model = vars
        .minimise(Expression::from(0.0))
        .using(microlp)
        .with_time_limit(SOLVER_TIME_LIMIT_SECONDS);
    for row in &place {
        let once: Expression = row.iter().sum();
        model = model.with(constraint!(once == 1));
    }
    for j in 0..k {
        for (r, &resource) in Resource::ALL.iter().enumerate() {
            let load: Expression = place
                .iter()
                .zip(&order)
                .filter_map(|(row, &i)| {
                    row.get(j)
                        .map(|&x| (sizes[i].get(resource) / units[r]) as f64 * x)
                })
                .sum();
            let room = (capacity.get(resource) / units[r]) as f64;
            model = model.with(constraint!(load <= room));
        }
    }
    let start = Instant::now();
    let solution = match model.solve() {
        Ok(solution) => solution,
        Err(ResolutionError::Infeasible) => return Ok(None),
        // microlp reports running out of time before any placement as a plain error.
        Err(_) if start.elapsed().as_secs_f64() >= SOLVER_TIME_LIMIT_SECONDS => {
            return Err(ExactError::TimeLimit {
                items: n,
                seconds: SOLVER_TIME_LIMIT_SECONDS,
            });
        }
        Err(other) => {
            return Err(ExactError::Solver {
                items: n,
                message: other.to_string(),
            });
        }
    };
    if !matches!(solution.status(), SolutionStatus::Optimal) {
        return Err(ExactError::TimeLimit {
            items: n,
            seconds: SOLVER_TIME_LIMIT_SECONDS,
        });
    }
    let mut assignment = vec![0; n];
    for (row, &i) in place.iter().zip(&order) {
        let node = row
            .iter()
            .position(|&x| solution.value(x) > 0.5)
            .ok_or_else(|| ExactError::WrongAnswer {
                items: n,
                problem: format!("item {i} is on no node"),
            })?;
        assignment[i] = node;
    }
    Ok(Some(assignment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::workloads::{Rng, caprara_toth};

    #[test]
    fn three_items_over_half_a_node_need_three_nodes() {
        let sizes = [Amounts::new(6, 1); 3];
        let opt = optimum(&sizes, Amounts::new(10, 10)).expect("solves");
        assert_eq!(opt.nodes, 3);
        assert_eq!(opt.assignment, vec![0, 1, 2]);
    }

    #[test]
    fn optimum_beats_first_fit_decreasing_where_it_can() {
        // 1-D, C = 10, sizes 4,4,3,3,3,3 (sum 20): FFD packs 4,4 | 3,3,3 | 3, three
        // nodes; the optimum is 4,3,3 | 4,3,3, two.
        let sizes: Vec<Amounts> = [4, 4, 3, 3, 3, 3]
            .iter()
            .map(|&w| Amounts::new(w, 0))
            .collect();
        let capacity = Amounts::new(10, 0);
        let ffd = renumber(&first_fit_decreasing(&sizes, capacity));
        assert_eq!(ffd.iter().max(), Some(&2));
        let opt = optimum(&sizes, capacity).expect("solves");
        assert_eq!(opt.nodes, 2);
        assert_eq!(check_assignment(&sizes, capacity, &opt.assignment), Ok(2));
    }

    #[test]
    fn assignments_returned_fit_and_number_nodes_from_zero() {
        let mut rng = Rng::new(3);
        for _ in 0..40 {
            let n = rng.range(1, 10) as usize;
            let capacity = Amounts::new(100, 100);
            let sizes: Vec<Amounts> = (0..n)
                .map(|_| Amounts::new(rng.range(1, 70), rng.range(1, 70)))
                .collect();
            let opt = optimum(&sizes, capacity).expect("solves");
            assert!(check_assignment(&sizes, capacity, &opt.assignment).is_ok());
            let mut seen: Vec<usize> = opt.assignment.clone();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen, (0..opt.nodes).collect::<Vec<_>>());
        }
    }

    #[test]
    fn memory_in_bytes_is_scaled_exactly() {
        // Two pods that exactly fill a 4 CPU / 16 GiB node in memory, and one more.
        let gib = 1u64 << 30;
        let sizes = [
            Amounts::new(1000, 10 * gib),
            Amounts::new(1000, 6 * gib),
            Amounts::new(2500, 6 * gib),
            Amounts::new(1500, 10 * gib),
        ];
        let opt = optimum(&sizes, Amounts::new(4000, 16 * gib)).expect("solves");
        assert_eq!(opt.nodes, 2);
    }

    #[test]
    fn class_10_triplets_are_solved_to_a_third_of_the_items() {
        for seed in 0..3 {
            let instance = caprara_toth(10, 12, seed).expect("12 is a multiple of 3");
            let sizes: Vec<Amounts> = instance.pods.iter().map(|p| p.requests).collect();
            let opt = optimum(&sizes, instance.capacity).expect("solves");
            assert_eq!(Some(opt.nodes), instance.known_optimum);
        }
    }

    #[test]
    fn more_than_max_exact_items_is_refused() {
        let sizes = vec![Amounts::new(1, 1); MAX_EXACT_ITEMS + 1];
        let err = optimum(&sizes, Amounts::new(10, 10)).expect_err("too many");
        assert_eq!(
            err.to_string(),
            format!(
                "{} items is more than the exact solver takes ({MAX_EXACT_ITEMS}); use the lower bounds for large workloads",
                MAX_EXACT_ITEMS + 1
            )
        );
    }

    #[test]
    fn an_item_larger_than_a_node_is_infeasible() {
        let err = optimum(&[Amounts::new(11, 1)], Amounts::new(10, 10)).expect_err("too big");
        assert!(matches!(err, ExactError::Infeasible(_)));
    }

    #[test]
    fn no_items_need_no_nodes() {
        let opt = optimum(&[], Amounts::new(10, 10)).expect("solves");
        assert_eq!(opt.nodes, 0);
        assert!(opt.assignment.is_empty());
    }

    /// Not a specification: prints how long the solver takes at the sizes that matter,
    /// for `cargo test -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_of_the_exact_solver() {
        for n in [10, 12, MAX_EXACT_ITEMS] {
            for class in 1u8..=9 {
                let mut times = Vec::new();
                for seed in 0..16 {
                    let instance = caprara_toth(class, n, seed).expect("class exists");
                    let sizes: Vec<Amounts> = instance.pods.iter().map(|p| p.requests).collect();
                    let start = Instant::now();
                    let result = optimum(&sizes, instance.capacity);
                    times.push(start.elapsed().as_secs_f64());
                    if let Err(err) = result {
                        println!("n={n} class={class} seed={seed}: {err}");
                    }
                }
                times.sort_by(f64::total_cmp);
                println!(
                    "n={n} class={class}: median {:.3}s, worst {:.3}s",
                    times[times.len() / 2],
                    times[times.len() - 1]
                );
            }
        }
    }
}
