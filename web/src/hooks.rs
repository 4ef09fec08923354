//! The app's hooks: the reducer wired into Yew.

use std::rc::Rc;

use yew::Reducible;

use crate::state::{Action, AppState};

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        AppState::reduce(self, action)
    }
}
