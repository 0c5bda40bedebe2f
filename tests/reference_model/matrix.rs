//! Row-major `f64` matrices with plain loops: the reference model's only data type.
//!
//! Serves the state-machine oracle: the reference computes every forward and
//! backward pass with these loops, so it shares no arithmetic (no ndarray, no
//! BLAS-like kernel, no summation order) with the system under test.

/// A `rows x cols` matrix, row-major.
#[derive(Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Matrix[{} x {}]", self.rows, self.cols)
    }
}

impl Matrix {
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        Matrix { rows, cols, data }
    }

    pub fn at(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    pub fn set(&mut self, r: usize, c: usize, value: f64) {
        self.data[r * self.cols + c] = value;
    }

    /// The rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        Matrix::from_fn(indices.len(), self.cols, |r, c| self.at(indices[r], c))
    }

    /// `[self | other]`, side by side.
    pub fn beside(&self, other: &Matrix) -> Matrix {
        assert_eq!(self.rows, other.rows);
        Matrix::from_fn(self.rows, self.cols + other.cols, |r, c| {
            if c < self.cols {
                self.at(r, c)
            } else {
                other.at(r, c - self.cols)
            }
        })
    }

    /// Columns `from..to`.
    pub fn columns(&self, from: usize, to: usize) -> Matrix {
        Matrix::from_fn(self.rows, to - from, |r, c| self.at(r, from + c))
    }

    /// Elementwise sum.
    pub fn plus(&self, other: &Matrix) -> Matrix {
        assert_eq!((self.rows, self.cols), (other.rows, other.cols));
        Matrix::from_fn(self.rows, self.cols, |r, c| self.at(r, c) + other.at(r, c))
    }

    /// Sum over rows, one value per column.
    pub fn column_sums(&self) -> Vec<f64> {
        let mut sums = vec![0.0; self.cols];
        for r in 0..self.rows {
            for (c, sum) in sums.iter_mut().enumerate() {
                *sum += self.at(r, c);
            }
        }
        sums
    }
}
