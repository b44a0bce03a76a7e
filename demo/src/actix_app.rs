//! The demo's routes under actix-web (`FRAMEWORK=actix`, built with the demo's `actix`
//! feature): the same pages, the same sessions.

use actix_web::{App, HttpResponse, HttpServer, web};
use cookie_session::actix::SessionMiddleware;
use cookie_session::{SessionError, SessionHandle};

use crate::site::{self, Page};

pub(crate) async fn serve(middleware: SessionMiddleware, port: u16) -> std::io::Result<()> {
    let middleware = middleware.with_form_bodies();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware.clone())
            .route(
                "/",
                web::get().to(|s: SessionHandle| async move { respond(site::index(&s)) }),
            )
            .route(
                "/login",
                web::post().to(
                    |s: SessionHandle, form: web::Form<site::LoginForm>| async move {
                        respond(site::login(&s, form.into_inner()))
                    },
                ),
            )
            .route(
                "/note",
                web::post().to(
                    |s: SessionHandle, form: web::Form<site::NoteForm>| async move {
                        respond(site::note(&s, form.into_inner()))
                    },
                ),
            )
            .route(
                "/me",
                web::get().to(|s: SessionHandle| async move { respond(site::me(&s)) }),
            )
            .route(
                "/logout",
                web::post().to(|s: SessionHandle| async move { respond(site::logout(&s)) }),
            )
            .route(
                "/health",
                web::get().to(|| async { respond(Ok(site::health())) }),
            )
            .route(
                "/plain",
                web::get().to(|s: SessionHandle| async move { respond(site::plain(&s)) }),
            )
            .route(
                "/plain",
                web::post().to(
                    |s: SessionHandle, form: web::Form<site::PlainNote>| async move {
                        respond(site::plain_note(&s, form.into_inner()))
                    },
                ),
            )
    })
    .workers(2)
    .bind(("127.0.0.1", port))?;
    for address in server.addrs() {
        println!("listening on http://{address}/");
    }
    server.run().await
}

fn respond(page: Result<Page, SessionError>) -> Result<HttpResponse, SessionError> {
    Ok(match page? {
        Page::Html(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html),
        Page::Json(value) => HttpResponse::Ok().json(value),
        Page::Text(text) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(text),
    })
}
