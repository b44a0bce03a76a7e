//! The demo's routes under axum.

use axum::Router;
use axum::extract::Form;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use cookie_session::tower::SessionLayer;
use cookie_session::{SessionError, SessionHandle};

use crate::site::{self, Page};

pub(crate) async fn serve(
    layer: SessionLayer,
    port: u16,
) -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new()
        .route(
            "/",
            get(|s: SessionHandle| async move { respond(site::index(&s)) }),
        )
        .route(
            "/login",
            post(|s: SessionHandle, Form(form)| async move { respond(site::login(&s, form)) }),
        )
        .route(
            "/note",
            post(|s: SessionHandle, Form(form)| async move { respond(site::note(&s, form)) }),
        )
        .route(
            "/me",
            get(|s: SessionHandle| async move { respond(site::me(&s)) }),
        )
        .route(
            "/logout",
            post(|s: SessionHandle| async move { respond(site::logout(&s)) }),
        )
        .route("/health", get(|| async { respond(Ok(site::health())) }))
        .route(
            "/plain",
            get(|s: SessionHandle| async move { respond(site::plain(&s)) }).post(
                |s: SessionHandle, Form(form)| async move { respond(site::plain_note(&s, form)) },
            ),
        )
        .layer(layer.with_form_bodies());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

fn respond(page: Result<Page, SessionError>) -> Response {
    match page {
        Ok(Page::Html(html)) => Html(html).into_response(),
        Ok(Page::Json(value)) => Json(value).into_response(),
        Ok(Page::Text(text)) => text.into_response(),
        Err(error) => error.into_response(),
    }
}
