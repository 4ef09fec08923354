//! The app's hooks: the reducer wired into Yew, and the node in a context.
//!
//! [`use_node_start`] starts the trader's node once and returns a [`NodeContext`]; the app puts
//! it in a `ContextProvider`, and any component reaches it with [`use_node`]. Every command goes
//! through [`NodeContext::command`] (or [`NodeContext::run`]), which reports a node that is not
//! started yet or a refused command in one place, next to the order form.

use std::rc::Rc;

use darkswap_net::{Command, NodeError, NodeHandle};
use yew::prelude::*;

use crate::settle::Settler;
use crate::state::{Action, AppState};

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        AppState::reduce(self, action)
    }
}

/// The node as components see it: its handle once started, and where refusals go.
#[derive(Clone)]
pub struct NodeContext {
    handle: Option<Rc<NodeHandle>>,
    dispatch: UseReducerDispatcher<AppState>,
    settler: Rc<Settler>,
}

impl PartialEq for NodeContext {
    fn eq(&self, other: &Self) -> bool {
        let same_handle = match (&self.handle, &other.handle) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_handle && self.dispatch == other.dispatch && Rc::ptr_eq(&self.settler, &other.settler)
    }
}

impl NodeContext {
    /// The node's handle, once it runs.
    pub fn handle(&self) -> Option<Rc<NodeHandle>> {
        self.handle.clone()
    }

    /// The page's settlements.
    pub fn settler(&self) -> Rc<Settler> {
        self.settler.clone()
    }

    /// The reducer's dispatcher.
    pub fn dispatch(&self, action: Action) {
        self.dispatch.dispatch(action);
    }

    /// Runs `f` with the handle; a node not started yet, or a command it refuses, is reported.
    pub fn run(&self, f: impl FnOnce(&NodeHandle) -> Result<(), NodeError>) {
        let refusal = match &self.handle {
            None => "not connected yet".to_string(),
            Some(handle) => match f(handle) {
                Ok(()) => return,
                Err(e) => e.to_string(),
            },
        };
        self.dispatch.dispatch(Action::TradingError(refusal));
    }

    /// Sends `command` to the node (see [`NodeContext::run`]).
    pub fn command(&self, command: Command) {
        self.run(|h| h.command(command));
    }

    /// A callback that turns its input into a command and sends it; what cannot become a command
    /// is reported like a refusal.
    pub fn callback<T: 'static>(
        &self,
        make: impl Fn(T) -> Result<Command, &'static str> + 'static,
    ) -> Callback<T> {
        let node = self.clone();
        Callback::from(move |input| match make(input) {
            Ok(command) => node.command(command),
            Err(why) => node.dispatch(Action::TradingError(why.to_string())),
        })
    }
}

/// Starts the node once (identity, relay-info, node task, events into the reducer) and returns
/// the context to provide.
#[hook]
pub fn use_node_start(state: &UseReducerHandle<AppState>) -> NodeContext {
    let handle = use_state(|| None::<Rc<NodeHandle>>);
    let settler = {
        let dispatch = state.dispatcher();
        (*use_state(move || Settler::new(dispatch))).clone()
    };
    {
        let dispatch = state.dispatcher();
        let relay_url = state.relay_url.clone();
        let handle = handle.clone();
        let settler = settler.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(h) = crate::network::start(relay_url, dispatch, settler).await {
                    handle.set(Some(Rc::new(h)));
                }
            });
        });
    }
    NodeContext {
        handle: (*handle).clone(),
        dispatch: state.dispatcher(),
        settler,
    }
}

/// The node, from the context the app provides.
#[hook]
pub fn use_node() -> NodeContext {
    use_context::<NodeContext>().expect("the app provides the node context")
}

/// Writes `text` into the input behind `field` when the input first appears and whenever `text`
/// changes, and otherwise leaves the field to the trader.
///
/// An input rendered with `value={..}` is not that: Yew writes the value back on every render
/// in which the field differs from it, so whatever the trader typed was wiped by the next
/// unrelated update (a metrics tick, a book update, the form's own error).
#[hook]
pub fn use_field_text(field: &NodeRef, text: String) {
    let field = field.clone();
    use_effect_with(text, move |text| {
        if let Some(input) = field.cast::<web_sys::HtmlInputElement>() {
            input.set_value(text);
        }
    });
}
