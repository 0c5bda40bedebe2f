//! The phase a layer runs in, and how a node resolves it (SPEC §4).
//!
//! Priority: a phase pinned on the node when the model was built, then the phase
//! of the enclosing call, then [`Phase::Eval`]. A pin is a property of one node and
//! is handed down only to that node's subtree, never to its siblings.

/// Which behaviour a layer runs: dropout drops only in `Train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub enum Phase {
    /// Training behaviour: `fit` and `train_on_batch` run in it.
    Train,
    /// Inference behaviour: `predict` and `evaluate` run in it; the default.
    #[default]
    Eval,
}

impl Phase {
    /// The phase a node runs in: its own pin if it has one, else the caller's.
    ///
    /// ```
    /// use nncheck::Phase;
    /// assert_eq!(Phase::resolve(Some(Phase::Eval), Phase::Train), Phase::Eval);
    /// assert_eq!(Phase::resolve(None, Phase::Train), Phase::Train);
    /// ```
    pub fn resolve(pin: Option<Phase>, outer: Phase) -> Phase {
        pin.unwrap_or(outer)
    }
}

/// What a container hands to each child on the way forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardCtx {
    /// The phase the child runs in (already resolved against its pin).
    pub phase: Phase,
    /// Whether every model enclosing the child is trainable (the AND of the path).
    pub path_trainable: bool,
}

impl ForwardCtx {
    /// The context of a top-level call in `phase`.
    pub fn top(phase: Phase) -> Self {
        ForwardCtx {
            phase,
            path_trainable: true,
        }
    }

    /// The context for a child node of a container whose own flag is `container_trainable`.
    pub fn child(self, pin: Option<Phase>, container_trainable: bool) -> Self {
        ForwardCtx {
            phase: Phase::resolve(pin, self.phase),
            path_trainable: self.path_trainable && container_trainable,
        }
    }
}
