//! Where each layer's parameters sit in a network's flat parameter vector.
//!
//! Layer `l` maps `sizes[l]` inputs to `sizes[l+1]` outputs; its weights are stored
//! row-major as `sizes[l] × sizes[l+1]` (so the forward product is `X·W` with no
//! transpose), immediately followed by its `sizes[l+1]` biases. Layers follow each other
//! in order. Gradients, Adam's moments and target networks use the same layout.

use std::ops::Range;

use crate::error::{Error, Result};

/// Layer sizes and the offsets of every layer's weights and biases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    sizes: Vec<usize>,
    /// Start of each layer's weights, plus the total length at the end.
    starts: Vec<usize>,
}

impl Layout {
    /// The layout of a network with these layer widths, from input to output.
    pub fn new(sizes: &[usize]) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::invalid(
                "sizes",
                format!("{sizes:?} needs at least an input and an output width"),
            ));
        }
        if let Some(position) = sizes.iter().position(|&width| width == 0) {
            return Err(Error::invalid(
                "sizes",
                format!("{sizes:?} has width 0 at position {position}"),
            ));
        }
        let mut starts = Vec::with_capacity(sizes.len());
        let mut offset = 0usize;
        starts.push(0);
        for pair in sizes.windows(2) {
            offset = pair[0]
                .checked_add(1)
                .and_then(|rows| rows.checked_mul(pair[1]))
                .and_then(|layer| offset.checked_add(layer))
                .ok_or_else(|| Error::invalid("sizes", format!("{sizes:?} overflows memory")))?;
            starts.push(offset);
        }
        Ok(Layout {
            sizes: sizes.to_vec(),
            starts,
        })
    }

    /// Layer widths from input to output.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Number of affine layers (one less than the number of widths).
    pub fn num_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    pub fn input_dim(&self) -> usize {
        self.sizes[0]
    }

    pub fn output_dim(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// Length of the flat parameter vector.
    pub fn num_params(&self) -> usize {
        self.starts[self.starts.len() - 1]
    }

    /// `(inputs, outputs)` of layer `layer`.
    pub fn layer_dims(&self, layer: usize) -> (usize, usize) {
        (self.sizes[layer], self.sizes[layer + 1])
    }

    /// Indices of layer `layer`'s weights (`inputs × outputs`, row-major).
    pub fn weights(&self, layer: usize) -> Range<usize> {
        let (inputs, outputs) = self.layer_dims(layer);
        let start = self.starts[layer];
        start..start + inputs * outputs
    }

    /// Indices of layer `layer`'s biases.
    pub fn bias(&self, layer: usize) -> Range<usize> {
        let end = self.starts[layer + 1];
        end - self.sizes[layer + 1]..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_tile_the_parameter_vector_without_gaps_or_overlaps() {
        let layout = Layout::new(&[3, 5, 2]).expect("valid sizes");
        assert_eq!(layout.weights(0), 0..15);
        assert_eq!(layout.bias(0), 15..20);
        assert_eq!(layout.weights(1), 20..30);
        assert_eq!(layout.bias(1), 30..32);
        assert_eq!(layout.num_params(), (3 + 1) * 5 + (5 + 1) * 2);
    }

    #[test]
    fn degenerate_sizes_are_rejected() {
        for sizes in [&[][..], &[4], &[4, 0, 1], &[usize::MAX, 2]] {
            assert!(
                matches!(Layout::new(sizes), Err(Error::InvalidParameter { ref field, .. }) if field == "sizes"),
                "{sizes:?}"
            );
        }
    }
}
