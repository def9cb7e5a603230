//! Reusable buffers for forward and backward passes.
//!
//! A [`Workspace`] holds every layer's activations for a batch (the backward pass
//! differentiates through them), two ping-pong buffers for the backpropagated
//! gradients, and the choice of GEMM [`Backend`]. It is sized once for a maximum batch;
//! any batch up to that capacity reuses the same memory, so training steps do not
//! allocate. A larger batch grows it once.
//!
//! One workspace serves one network at a time; keep one per network (and per thread)
//! whose forward pass must survive until its backward pass.

use super::gemm::Backend;
use super::layout::Layout;
use super::scalar::Scalar;

/// Activations and gradient buffers for a network's forward and backward passes.
#[derive(Clone, Debug)]
pub struct Workspace<T: Scalar = f32> {
    pub(super) sizes: Vec<usize>,
    capacity: usize,
    /// Rows of the last forward pass, `None` before the first.
    pub(super) batch: Option<usize>,
    /// `activations[0]` is a copy of the input, `activations[l]` the output of layer `l`.
    pub(super) activations: Vec<Vec<T>>,
    /// Gradient with respect to the current layer's output, and the next one down.
    pub(super) delta: Vec<T>,
    pub(super) delta_next: Vec<T>,
    pub(super) backend: Backend,
}

impl<T: Scalar> Workspace<T> {
    /// A workspace for networks with this layout and batches of up to `max_batch` rows.
    pub(super) fn new(layout: &Layout, max_batch: usize) -> Self {
        let mut workspace = Workspace {
            sizes: layout.sizes().to_vec(),
            capacity: 0,
            batch: None,
            activations: vec![Vec::new(); layout.sizes().len()],
            delta: Vec::new(),
            delta_next: Vec::new(),
            backend: Backend::default(),
        };
        workspace.reserve(max_batch);
        workspace
    }

    /// Largest batch that fits without growing.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows of the last forward pass (`None` before the first).
    pub fn batch(&self) -> Option<usize> {
        self.batch
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Computes this workspace's products with `backend` from now on.
    pub fn set_backend(&mut self, backend: Backend) {
        self.backend = backend;
    }

    /// Output of the last forward pass, `batch × output_dim` row-major (empty before the
    /// first).
    pub fn output(&self) -> &[T] {
        let rows = self.batch.unwrap_or(0);
        let width = self.sizes[self.sizes.len() - 1];
        &self.activations[self.sizes.len() - 1][..rows * width]
    }

    /// Output of hidden or output layer `layer` (1-based: `layer = 1` is the first hidden
    /// layer; `0` is the input copy) from the last forward pass.
    pub fn activation(&self, layer: usize) -> Option<&[T]> {
        let rows = self.batch?;
        let width = *self.sizes.get(layer)?;
        Some(&self.activations[layer][..rows * width])
    }

    /// Makes room for `batch` rows: allocates only when `batch` exceeds the capacity.
    pub(super) fn reserve(&mut self, batch: usize) {
        if batch <= self.capacity {
            return;
        }
        for (buffer, &width) in self.activations.iter_mut().zip(&self.sizes) {
            buffer.resize(batch * width, T::ZERO);
        }
        // Deltas hold gradients with respect to every layer's output except the input.
        let widest = self.sizes[1..].iter().copied().max().unwrap_or(0);
        self.delta.resize(batch * widest, T::ZERO);
        self.delta_next.resize(batch * widest, T::ZERO);
        self.capacity = batch;
    }
}
