//! The replay buffer: a ring that keeps the newest B transitions, samples uniformly with
//! replacement into minibatches whose rows stay whole, and round-trips through JSON.

use policy_param::replay::{Minibatch, ReplayBuffer, Transition, Transitions};
use policy_param::rng::RunSeed;
use policy_param::Error;

/// Transition number `k`: every field encodes `k`, so a sampled row can be checked whole.
fn transition(k: usize) -> ([f32; 2], [f32; 1], f32, [f32; 2], bool) {
    let x = k as f32;
    (
        [x, -x],
        [x + 0.5],
        10.0 * x,
        [x + 1.0, -x - 1.0],
        k.is_multiple_of(3),
    )
}

fn push(buffer: &mut ReplayBuffer, k: usize) {
    let (s, a, r, s2, terminal) = transition(k);
    buffer
        .push(Transition {
            observation: &s,
            action: &a,
            reward: r,
            next_observation: &s2,
            terminal,
        })
        .unwrap();
}

#[test]
fn the_ring_keeps_the_newest_transitions_in_order() {
    let mut buffer = ReplayBuffer::new(2, 1, 5).unwrap();
    for k in 0..3 {
        push(&mut buffer, k);
    }
    assert_eq!(buffer.len(), 3);
    assert_eq!(buffer.get(0).unwrap().reward, 0.0);
    for k in 3..12 {
        push(&mut buffer, k);
    }
    // Capacity 5: transitions 7..=11 remain, oldest first.
    assert_eq!(buffer.len(), 5);
    let kept: Vec<f32> = (0..5)
        .map(|i| buffer.get(i).unwrap().observation[0])
        .collect();
    assert_eq!(kept, [7.0, 8.0, 9.0, 10.0, 11.0]);
    assert!(buffer.get(5).is_none());
    // The storage was not reallocated past its capacity.
    assert_eq!(buffer.storage().len(), 5);
}

#[test]
fn samples_are_whole_stored_rows_drawn_uniformly() {
    let mut buffer = ReplayBuffer::new(2, 1, 8).unwrap();
    for k in 0..13 {
        push(&mut buffer, k);
    }
    let stored: Vec<usize> = (5..13).collect();
    let mut batch = Minibatch::new(2, 1, 64);
    let mut rng = RunSeed(1).stream("replay-test");
    let mut counts = [0usize; 13];
    let draws = 2000;
    for _ in 0..draws {
        buffer.sample_into(&mut rng, 64, &mut batch).unwrap();
        assert_eq!(batch.len(), 64);
        for row in 0..64 {
            let k = batch.observations()[2 * row] as usize;
            assert!(
                stored.contains(&k),
                "sampled transition {k} is not in the buffer"
            );
            let (s, a, r, s2, terminal) = transition(k);
            assert_eq!(&batch.observations()[2 * row..2 * row + 2], &s);
            assert_eq!(batch.actions()[row], a[0]);
            assert_eq!(batch.rewards()[row], r);
            assert_eq!(&batch.next_observations()[2 * row..2 * row + 2], &s2);
            assert_eq!(batch.not_terminal()[row], if terminal { 0.0 } else { 1.0 });
            counts[k] += 1;
        }
    }
    // Uniform over the 8 stored rows: chi-square with 7 degrees of freedom; its 99.9%
    // quantile is 24.3.
    let expected = (draws * 64) as f64 / 8.0;
    let chi2: f64 = stored
        .iter()
        .map(|&k| (counts[k] as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 24.3, "chi-square {chi2}, counts {counts:?}");
}

#[test]
fn sampling_is_a_function_of_the_stream() {
    let mut buffer = ReplayBuffer::new(2, 1, 50).unwrap();
    for k in 0..50 {
        push(&mut buffer, k);
    }
    let mut sample = |seed| {
        let mut batch = Minibatch::new(2, 1, 16);
        buffer
            .sample_into(&mut RunSeed(seed).stream("replay-test"), 16, &mut batch)
            .unwrap();
        batch.observations().to_vec()
    };
    assert_eq!(sample(3), sample(3));
    assert_ne!(sample(3), sample(4));
}

#[test]
fn json_round_trip_preserves_the_ring() {
    let mut buffer = ReplayBuffer::new(2, 1, 4).unwrap();
    for k in 0..6 {
        push(&mut buffer, k);
    }
    let json = serde_json::to_string(&buffer).unwrap();
    let mut restored: ReplayBuffer = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, buffer);
    // And both keep evolving the same way.
    push(&mut buffer, 6);
    push(&mut restored, 6);
    assert_eq!(restored, buffer);
    assert_eq!(restored.get(0).unwrap().observation[0], 3.0);
}

#[test]
fn malformed_input_is_a_typed_error() {
    let mut buffer = ReplayBuffer::new(2, 1, 4).unwrap();
    let bad_length = buffer.push(Transition {
        observation: &[1.0],
        action: &[0.0],
        reward: 0.0,
        next_observation: &[0.0, 0.0],
        terminal: false,
    });
    assert!(
        matches!(bad_length, Err(Error::InvalidParameter { field, .. }) if field == "transition.observation")
    );
    let nan_reward = buffer.push(Transition {
        observation: &[1.0, 2.0],
        action: &[0.0],
        reward: f32::NAN,
        next_observation: &[0.0, 0.0],
        terminal: false,
    });
    assert!(
        matches!(nan_reward, Err(Error::InvalidParameter { field, .. }) if field == "transition.reward")
    );
    assert!(buffer.is_empty());

    let mut batch = Minibatch::new(2, 1, 8);
    let mut rng = RunSeed(0).stream("replay-test");
    assert!(
        buffer.sample_into(&mut rng, 4, &mut batch).is_err(),
        "empty buffer"
    );
    push(&mut buffer, 0);
    assert!(
        buffer.sample_into(&mut rng, 9, &mut batch).is_err(),
        "batch over capacity"
    );
    let mut wrong_shape = Minibatch::new(3, 1, 8);
    assert!(buffer.sample_into(&mut rng, 4, &mut wrong_shape).is_err());
    assert!(matches!(
        ReplayBuffer::new(2, 1, 0),
        Err(Error::InvalidParameter { .. })
    ));

    // A checkpoint whose ring pointer does not fit its rows.
    let json = serde_json::to_string(&buffer)
        .unwrap()
        .replace("\"next\":1", "\"next\":3");
    assert!(serde_json::from_str::<ReplayBuffer>(&json).is_err());
}

#[test]
fn transitions_gather_rows_by_index() {
    let mut table = Transitions::new(2, 1).unwrap();
    for k in 0..5 {
        let (s, a, r, s2, terminal) = transition(k);
        table
            .push(Transition {
                observation: &s,
                action: &a,
                reward: r,
                next_observation: &s2,
                terminal,
            })
            .unwrap();
    }
    let mut batch = Minibatch::new(2, 1, 4);
    table.gather(&[4, 0, 2], &mut batch).unwrap();
    assert_eq!(batch.rewards(), [40.0, 0.0, 20.0]);
    assert_eq!(batch.not_terminal(), [1.0, 0.0, 1.0]);
    assert!(table.gather(&[5], &mut batch).is_err());
}
