//! The trader's own live orders on every pair, each with a cancel button, and what happened to
//! them lately.

use darkswap_net::OwnOrder;
use darkswap_orderbook::{OrderId, Units};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct MyOrdersProps {
    pub own: Rc<BTreeMap<String, OwnOrder>>,
    pub notices: Rc<VecDeque<String>>,
    pub on_cancel: Callback<OrderId>,
    /// How amounts and prices are written.
    pub units: Rc<Units>,
}

#[function_component(MyOrders)]
pub fn my_orders(props: &MyOrdersProps) -> Html {
    html! {
        <section id="my-orders">
            <h2>{ format!("My orders ({})", props.own.len()) }</h2>
            if props.own.is_empty() {
                <p class="muted">{ "You have no live orders." }</p>
            } else {
                <table class="orders">
                    <thead><tr><th>{ "pair" }</th><th>{ "side" }</th><th>{ "price" }</th><th>{ "amount" }</th><th></th></tr></thead>
                    <tbody>
                    { for props.own.values().map(|o| {
                        let id = o.id;
                        let on_cancel = props.on_cancel.clone();
                        let u = props.units.pair(&o.pair);
                        html! {
                            <tr data-testid="my-order" data-order={o.id.to_hex()} data-amount={o.spec.amount.to_string()}>
                                <td>{ o.pair.to_string() }</td>
                                <td>{ o.spec.side.to_string() }</td>
                                <td class="mono" title={u.price_label()}>{ u.price(o.spec.price) }</td>
                                <td class="mono num" title={u.base.label()}>{ u.base.number(u128::from(o.spec.amount)) }</td>
                                <td><button data-testid="cancel" onclick={Callback::from(move |_| on_cancel.emit(id))}>{ "Cancel" }</button></td>
                            </tr>
                        }
                    }) }
                    </tbody>
                </table>
            }
            <ul class="notices">
                { for props.notices.iter().rev().map(|n| html! { <li class="muted" data-testid="order-notice">{ n }</li> }) }
            </ul>
        </section>
    }
}
