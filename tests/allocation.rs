//! The Allocation environment and the enumeration of integer action sets, checked
//! against brute force over the bounds box, an independent dynamic-programming count,
//! hand-computed rewards and transitions, and typed errors.

use std::ops::ControlFlow;

use policy_param::env::allocation::{
    count_feasible, enumerate_feasible, for_each_feasible, Allocation, AllocationParams,
};
use policy_param::env::{make, ActionSpace, Env, IntegerSpace, LinearConstraint};
use policy_param::Error;

/// Every integer point of the bounds box that `violation` accepts, in lexicographic order.
fn brute_force(space: &IntegerSpace) -> Vec<Vec<i64>> {
    let dim = space.lower.len();
    let mut x = space.lower.clone();
    let mut feasible = Vec::new();
    loop {
        let as_f64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        if space.violation(&as_f64).is_none() {
            feasible.push(x.clone());
        }
        // Odometer: advance the last component, carrying into earlier ones.
        let mut k = dim;
        loop {
            if k == 0 {
                return feasible;
            }
            k -= 1;
            if x[k] < space.upper[k] {
                x[k] += 1;
                break;
            }
            x[k] = space.lower[k];
        }
    }
}

/// Count feasible allocations by dynamic programming over the components, for integer
/// unit costs: the state is (units of the current resource used, budget used).
fn dp_count(p: &AllocationParams) -> u128 {
    let budget = p.budget as usize;
    let sites = p.price.len();
    // counts[b] = ways to reach total spending b with the resources done so far.
    let mut counts = vec![0u128; budget + 1];
    counts[0] = 1;
    for (i, &stock) in p.stock.iter().enumerate() {
        let cost = p.unit_cost[i] as usize;
        let stock = stock as usize;
        // table[u][b]: u units of resource i used so far, total spending b.
        let mut table = vec![vec![0u128; budget + 1]; stock + 1];
        table[0] = counts.clone();
        for _ in 0..sites {
            let mut next = vec![vec![0u128; budget + 1]; stock + 1];
            for (u, row) in table.iter().enumerate() {
                for (b, &ways) in row.iter().enumerate() {
                    if ways == 0 {
                        continue;
                    }
                    for v in 0..=(stock - u) {
                        let nb = b + cost * v;
                        if nb > budget {
                            break;
                        }
                        next[u + v][nb] += ways;
                    }
                }
            }
            table = next;
        }
        counts = vec![0u128; budget + 1];
        for row in &table {
            for (b, c) in row.iter().enumerate() {
                counts[b] += c;
            }
        }
    }
    counts.iter().sum()
}

/// Small instances with binding stock and budget, a free resource, fractional costs.
fn small_variants() -> Vec<AllocationParams> {
    let mut fractional = AllocationParams::small();
    fractional.unit_cost = vec![0.7, 1.3];
    fractional.budget = 3.4;
    let mut free_resource = AllocationParams::small();
    free_resource.unit_cost = vec![0.0, 2.0];
    free_resource.budget = 4.0;
    let three_by_two = AllocationParams {
        stock: vec![3, 2, 2],
        unit_cost: vec![1.0, 2.0, 1.0],
        budget: 5.0,
        service_rate: vec![1.0, 1.5, 0.5],
        price: vec![2.0, 1.0],
        arrival_rate: vec![1.0, 2.0],
        carry_over: 0.0,
        horizon: 5,
    };
    vec![
        AllocationParams::small(),
        fractional,
        free_resource,
        three_by_two,
    ]
}

#[test]
fn enumeration_equals_brute_force_on_small_instances() {
    for params in small_variants() {
        let model = params.clone().check().unwrap();
        let space = model.integer_space();
        let expected = brute_force(space);
        let enumerated: Vec<Vec<i64>> = enumerate_feasible(space).unwrap().collect();
        assert!(!expected.is_empty());
        assert_eq!(enumerated, expected, "{params:?}");
        assert_eq!(count_feasible(space).unwrap(), expected.len() as u64);
        assert_eq!(
            model.feasible_count().unwrap(),
            expected.len() as u128,
            "{params:?}"
        );
    }
}

/// By hand: resource 0 ships s₀ ≤ 4 units and resource 1 s₁ ≤ 3 units over 3 sites, in
/// C(s+2, 2) ways each: 35 × 20 = 700 without the budget. The budget s₀ + 3s₁ ≤ 10 rules
/// out s₁ = 3 with s₀ ≥ 2: (6 + 10 + 15) × 10 = 310. So 390 remain.
#[test]
fn the_small_instance_has_390_actions() {
    let env = Allocation::small().unwrap();
    assert_eq!(env.model().feasible_count().unwrap(), 390);
    assert_eq!(brute_force(env.model().integer_space()).len(), 390);
}

#[test]
fn feasible_count_matches_an_independent_dynamic_program() {
    let mut instances = small_variants();
    instances.retain(|p| p.unit_cost.iter().all(|c| c.fract() == 0.0));
    instances.push(AllocationParams::large());
    for params in instances {
        let model = params.clone().check().unwrap();
        assert_eq!(
            model.feasible_count().unwrap(),
            dp_count(&params),
            "{params:?}"
        );
    }
}

#[test]
fn every_enumerated_action_is_accepted_by_the_env() {
    let env = Allocation::small().unwrap();
    for action in enumerate_feasible(env.model().integer_space()).unwrap() {
        let as_f64: Vec<f64> = action.iter().map(|&v| v as f64).collect();
        policy_param::env::validate_action("Allocation", env.action_space(), &as_f64).unwrap();
    }
}

#[test]
fn the_large_instance_has_over_a_million_feasible_actions() {
    let env = Allocation::large().unwrap();
    let space = env.model().integer_space();
    assert_eq!(space.lower.len(), 30);
    assert!(env.model().feasible_count().unwrap() >= 1_000_000);
    // The enumerator also reaches a million distinct feasible points without running out.
    let mut seen = 0u64;
    let mut previous: Option<Vec<i64>> = None;
    let stopped = for_each_feasible(space, |x| {
        let as_f64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        assert!(space.violation(&as_f64).is_none());
        if let Some(p) = &previous {
            assert!(p.as_slice() < x, "not strictly increasing");
        }
        previous = Some(x.to_vec());
        seen += 1;
        if seen == 1_000_000 {
            ControlFlow::Break(seen)
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(stopped, Some(1_000_000));
}

#[test]
fn enumeration_handles_negative_bounds_and_coefficients() {
    let space = IntegerSpace {
        lower: vec![-2, -1, 0],
        upper: vec![2, 3, 2],
        constraints: vec![
            LinearConstraint {
                name: "mixed".into(),
                coefficients: vec![1.0, -2.0, 0.5],
                bound: 0.5,
            },
            LinearConstraint {
                name: "sum".into(),
                coefficients: vec![-1.0, -1.0, -1.0],
                bound: -1.0,
            },
        ],
    };
    let enumerated: Vec<Vec<i64>> = enumerate_feasible(&space).unwrap().collect();
    assert_eq!(enumerated, brute_force(&space));
    assert!(!enumerated.is_empty());
    // An empty set, and a malformed space.
    let mut empty = space.clone();
    empty.constraints[1].bound = -100.0;
    assert_eq!(count_feasible(&empty).unwrap(), 0);
    let mut malformed = space;
    malformed.upper[0] = -3;
    assert!(matches!(
        enumerate_feasible(&malformed),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn reward_and_transition_on_a_hand_made_case() {
    let mut params = AllocationParams::small();
    params.arrival_rate = vec![0.0; 3]; // no arrivals: the transition is deterministic
    let mut env = Allocation::new(params).unwrap();
    // Demand 2, 0, 5. Resource 0 (cost 1, serves 1): 3 units to site 0, 1 to site 2.
    // Resource 1 (cost 3, serves 2): 1 unit to site 1, 1 to site 2.
    let demand = [2.0, 0.0, 5.0];
    let action = [3.0, 0.0, 1.0, 0.0, 1.0, 1.0];
    assert_eq!(env.model().action_index(1, 2), 5);
    // Capacity per site: 3, 2, 1 + 2 = 3; served: min(2, 3) = 2, min(0, 2) = 0, min(5, 3) = 3.
    // Revenue 3·2 + 4·0 + 5·3 = 21; spending 1·4 + 3·2 = 10 (exactly the budget).
    assert_eq!(env.model().reward(&demand, &action).unwrap(), 11.0);
    env.set_state(&demand, 0).unwrap();
    let step = env.step(&action).unwrap();
    assert_eq!(step.reward, 11.0);
    // Unmet demand 0, 0, 2 decays by ρ = 0.5.
    assert_eq!(env.state(), &[0.0, 0.0, 1.0]);
    assert_eq!(step.observation, vec![0.0f32, 0.0, 1.0]);
    assert!(!step.terminated && !step.truncated);
}

#[test]
fn reward_with_fractional_service_rates() {
    let params = AllocationParams {
        stock: vec![2, 5],
        unit_cost: vec![0.5, 0.25],
        budget: 10.0,
        service_rate: vec![1.5, 0.4],
        price: vec![2.0, 10.0],
        arrival_rate: vec![1.0, 1.0],
        carry_over: 0.25,
        horizon: 3,
    };
    let model = params.check().unwrap();
    // Site 0 gets 2 of resource 0 (capacity 3) and 1 of resource 1 (0.4): 3.4 > demand 2.5.
    // Site 1 gets 4 of resource 1: capacity 1.6 < demand 7.
    let action = [2.0, 0.0, 1.0, 4.0];
    let reward = model.reward(&[2.5, 7.0], &action).unwrap();
    let expected = 2.0 * 2.5 + 10.0 * 1.6 - (0.5 * 2.0 + 0.25 * 5.0);
    assert!((reward - expected).abs() <= 1e-12, "{reward} vs {expected}");
}

#[test]
fn arrivals_are_poisson_with_the_given_rates() {
    let mut env = Allocation::small().unwrap();
    env.reset(Some(7));
    let rates = env.model().params().arrival_rate.clone();
    let zero = vec![0.0; 6];
    let n = 20_000;
    let mut sums = [0.0; 3];
    for _ in 0..n {
        env.set_state(&[0.0; 3], 0).unwrap();
        env.step(&zero).unwrap();
        for (s, d) in sums.iter_mut().zip(env.state()) {
            assert_eq!(d.fract(), 0.0, "arrivals must be whole units");
            *s += d;
        }
    }
    for (s, rate) in sums.iter().zip(&rates) {
        let mean = s / n as f64;
        assert!(
            (mean - rate).abs() <= 5.0 * (rate / n as f64).sqrt(),
            "mean {mean}, rate {rate}"
        );
    }
}

#[test]
fn make_builds_the_small_instance_and_episodes_truncate() {
    let mut env = make("Allocation").unwrap();
    assert_eq!(env.id(), "Allocation");
    assert_eq!(env.observation_dim(), 3);
    assert!(matches!(env.action_space(), ActionSpace::Integer(s) if s.lower.len() == 6));
    let first = env.reset(Some(1));
    assert_eq!(env.reset(Some(1)), first);
    let action = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    let mut steps = 0;
    loop {
        steps += 1;
        let step = env.step(&action).unwrap();
        assert!(!step.terminated);
        if step.truncated {
            break;
        }
    }
    assert_eq!(Some(steps), env.max_episode_steps());
}

#[test]
fn bad_actions_and_states_are_typed_errors() {
    let mut env = Allocation::small().unwrap();
    assert!(matches!(env.step(&[0.0; 6]), Err(Error::NotReset { .. })));
    env.reset(Some(0));
    let infeasible = |r: Result<_, Error>| matches!(r, Err(Error::InfeasibleAction { .. }));
    assert!(
        infeasible(env.step(&[2.0, 2.0, 1.0, 0.0, 0.0, 0.0])),
        "stock of resource 0 exceeded"
    );
    assert!(
        infeasible(env.step(&[2.0, 0.0, 0.0, 1.0, 1.0, 1.0])),
        "budget exceeded"
    );
    assert!(
        infeasible(env.step(&[1.5, 0.0, 0.0, 0.0, 0.0, 0.0])),
        "non-integer"
    );
    assert!(
        infeasible(env.step(&[-1.0, 0.0, 0.0, 0.0, 0.0, 0.0])),
        "negative"
    );
    assert!(matches!(env.step(&[0.0; 5]), Err(Error::ActionDim { .. })));
    assert!(matches!(
        env.step(&[f64::NAN, 0.0, 0.0, 0.0, 0.0, 0.0]),
        Err(Error::NonFiniteAction { .. })
    ));
    assert!(matches!(
        env.set_state(&[1.0, 2.0], 0),
        Err(Error::StateDim { .. })
    ));
    assert!(matches!(
        env.set_state(&[1.0, -2.0, 0.0], 0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        env.model()
            .reward(&[1.0, 1.0, 1.0], &[5.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        Err(Error::InfeasibleAction { .. })
    ));
}

#[test]
fn invalid_parameters_are_typed_errors_naming_the_field() {
    type Mutation = Box<dyn Fn(&mut AllocationParams)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("stock", Box::new(|p| p.stock = vec![])),
        ("stock", Box::new(|p| p.stock[0] = -1)),
        ("price", Box::new(|p| p.price = vec![])),
        ("unit_cost", Box::new(|p| p.unit_cost = vec![1.0])),
        ("unit_cost", Box::new(|p| p.unit_cost[1] = -1.0)),
        ("service_rate", Box::new(|p| p.service_rate[0] = 0.0)),
        ("price", Box::new(|p| p.price[2] = -0.5)),
        ("arrival_rate", Box::new(|p| p.arrival_rate = vec![1.0])),
        ("arrival_rate", Box::new(|p| p.arrival_rate[0] = f64::NAN)),
        ("budget", Box::new(|p| p.budget = -1.0)),
        ("budget", Box::new(|p| p.budget = f64::INFINITY)),
        ("carry_over", Box::new(|p| p.carry_over = 1.5)),
        ("horizon", Box::new(|p| p.horizon = 0)),
    ];
    for (field, change) in cases {
        let mut p = AllocationParams::small();
        change(&mut p);
        match Allocation::new(p) {
            Err(Error::InvalidParameter { field: f, .. }) => {
                assert!(f.starts_with(field), "error names {f}, expected {field}")
            }
            other => panic!(
                "expected InvalidParameter for {field}, got {:?}",
                other.err()
            ),
        }
    }
}

#[test]
fn counting_too_many_totals_is_an_error_not_a_hang() {
    let params = AllocationParams {
        stock: vec![1 << 30, 1 << 30],
        unit_cost: vec![0.0, 0.0],
        budget: 0.0,
        service_rate: vec![1.0, 1.0],
        price: vec![1.0],
        arrival_rate: vec![1.0],
        carry_over: 0.5,
        horizon: 1,
    };
    let model = params.check().unwrap();
    assert!(matches!(
        model.feasible_count(),
        Err(Error::Numerical { .. })
    ));
}
