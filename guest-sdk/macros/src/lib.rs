//! The attributes of `cchost-sdk`. They stay thin: `#[contract]` writes the routing
//! table of an `impl` block (the `Contract` trait: names, argument decoding, metadata)
//! and `#[object]` adds the serde and schema derives. Everything they call lives in
//! `cchost_sdk::contract`, as ordinary tested functions.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Error, Expr, ExprLit, FnArg, GenericArgument, ImplItem, ItemImpl, Lit, Meta, Pat,
    PathArguments, ReceiverKind, ReturnType, Token, Type,
};

/// Marks an `impl` block as a contract. Its `#[transaction]` methods become the
/// contract's transactions; see `cchost_sdk::contract`.
///
/// ```ignore
/// #[contract(name = "AssetTransfer", title = "Asset transfer", version = "1.0.0")]
/// impl AssetTransfer {
///     #[transaction]                    // submit, called as "CreateAsset"
///     fn create_asset(&self, ctx: &Context, id: String, size: u32) -> Result<Asset> { .. }
///     #[transaction(evaluate)]
///     fn read_asset(&self, ctx: &Context, id: String) -> Result<String> { .. }
///     #[transaction(name = "Legacy_Name")]
///     fn legacy(&self, ctx: &Context) -> Result<()> { .. }
///     #[transaction(extra_args)]        // extra arguments are accepted and ignored
///     fn init_ledger(&self, ctx: &Context) -> Result<()> { .. }
///     #[before_transaction]
///     fn check(&self, ctx: &Context) -> Result<()> { .. }
/// }
/// ```
///
/// Every transaction takes `&self`, then the context, then its parameters (each a
/// `serde` type, or `&str`), and returns `Result<T, E>` (`T: Serialize`,
/// `E: Into<cchost_sdk::Error>`) or a plain `T`. Names default to the method name in
/// PascalCase. Hooks: `#[before_transaction] fn(&self, &Context) -> Result<()>`,
/// `#[after_transaction] fn(&self, &Context, &[u8]) -> Result<()>`,
/// `#[unknown_transaction] fn(&self, &Context, &str) -> Result<Vec<u8>>`.
#[proc_macro_attribute]
pub fn contract(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand_contract(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Derives `Serialize`, `Deserialize` and `JsonSchema` through `cchost_sdk`'s
/// re-exports, so a chaincode's data types need no other dependency. Like
/// fabric-contract-api's `@Object()`: the type appears in the metadata's
/// `components.schemas`.
#[proc_macro_attribute]
pub fn object(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return Error::new(Span::call_site(), "#[object] takes no arguments")
            .to_compile_error()
            .into();
    }
    let item = Tokens::from(item);
    quote! {
        #[derive(
            ::cchost_sdk::serde::Serialize,
            ::cchost_sdk::serde::Deserialize,
            ::cchost_sdk::schemars::JsonSchema
        )]
        #[serde(crate = "::cchost_sdk::serde")]
        #[schemars(crate = "::cchost_sdk::schemars")]
        #item
    }
    .into()
}

struct Transaction {
    method: syn::Ident,
    name: String,
    evaluate: bool,
    /// Arguments past the parameters are accepted and ignored.
    extra_args: bool,
    params: Vec<Param>,
    /// `Some(T)` for `Result<T, _>` or a plain `T`; `None` for `()`.
    returns: Option<Type>,
    returns_result: bool,
}

struct Param {
    ident: syn::Ident,
    /// The owned type decoded from the argument.
    owned: Type,
    /// Passed as `&value` (the method takes a reference).
    by_ref: bool,
}

#[derive(Default)]
struct Hooks {
    before: Option<syn::Ident>,
    after: Option<syn::Ident>,
    unknown: Option<syn::Ident>,
}

fn string_value(expr: &Expr) -> Result<String, Error> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.value()),
        other => Err(Error::new(other.span(), "expected a string literal")),
    }
}

fn expand_contract(attr: Tokens, item: Tokens) -> Result<Tokens, Error> {
    let mut block: ItemImpl = syn::parse2(item)?;
    if let Some((path, _)) = &block.trait_ {
        return Err(Error::new(
            path.span(),
            "#[contract] goes on an inherent impl block, not a trait impl",
        ));
    }
    let self_ty = block.self_ty.clone();
    let type_name = match &*self_ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        other => return Err(Error::new(other.span(), "#[contract] needs a named type")),
    };

    let (mut name, mut title, mut version) = (type_name, String::new(), String::new());
    let args = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    for meta in &args {
        let Meta::NameValue(nv) = meta else {
            return Err(Error::new(
                meta.span(),
                "expected name = \"...\", title = \"...\" or version = \"...\"",
            ));
        };
        let value = string_value(&nv.value)?;
        match nv.path.get_ident().map(ToString::to_string).as_deref() {
            Some("name") => name = value,
            Some("title") => title = value,
            Some("version") => version = value,
            _ => {
                return Err(Error::new(
                    nv.path.span(),
                    "unknown #[contract] argument: expected name, title or version",
                ));
            }
        }
    }

    let mut transactions = Vec::new();
    let mut hooks = Hooks::default();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let mut tx_attr = None;
        let mut kept = Vec::new();
        for a in method.attrs.drain(..) {
            let ident = a.path().get_ident().map(ToString::to_string);
            match ident.as_deref() {
                Some("transaction") => tx_attr = Some(a),
                Some("before_transaction") => hooks.before = Some(method.sig.ident.clone()),
                Some("after_transaction") => hooks.after = Some(method.sig.ident.clone()),
                Some("unknown_transaction") => hooks.unknown = Some(method.sig.ident.clone()),
                _ => kept.push(a),
            }
        }
        method.attrs = kept;
        if let Some(a) = tx_attr {
            transactions.push(transaction(&method.sig, &a)?);
        }
    }
    for (i, tx) in transactions.iter().enumerate() {
        if transactions.iter().take(i).any(|t| t.name == tx.name) {
            return Err(Error::new(
                tx.method.span(),
                format!("two transactions are named {}", tx.name),
            ));
        }
    }

    let infos = transactions.iter().map(|tx| {
        let tx_name = &tx.name;
        let kind = if tx.evaluate {
            quote!(Evaluate)
        } else {
            quote!(Submit)
        };
        let params = tx.params.iter().map(|p| {
            let pname = lower_camel(&p.ident.to_string());
            let ty = &p.owned;
            quote! {
                ::cchost_sdk::contract::ParameterInfo {
                    name: #pname,
                    description: "",
                    schema: ::cchost_sdk::contract::schema_of::<#ty>,
                }
            }
        });
        let returns = match &tx.returns {
            Some(ty) => {
                quote!(::core::option::Option::Some(::cchost_sdk::contract::schema_of::<#ty>))
            }
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::cchost_sdk::contract::TransactionInfo {
                name: #tx_name,
                kind: ::cchost_sdk::contract::TxKind::#kind,
                parameters: ::std::vec![#(#params),*],
                returns: #returns,
            }
        }
    });

    let arms = transactions.iter().map(|tx| {
        let tx_name = &tx.name;
        let method = &tx.method;
        let count = tx.params.len();
        let arity = if tx.extra_args {
            quote!(::cchost_sdk::contract::__arity_at_least(args, #count)?;)
        } else {
            quote!(::cchost_sdk::contract::__arity(args, #count)?;)
        };
        let decode = tx.params.iter().enumerate().map(|(i, p)| {
            let ident = &p.ident;
            let ty = &p.owned;
            let pname = lower_camel(&ident.to_string());
            quote! { let #ident = ::cchost_sdk::contract::__arg::<#ty>(args, #i, #pname)?; }
        });
        let pass = tx.params.iter().map(|p| {
            let ident = &p.ident;
            if p.by_ref { quote!(&#ident) } else { quote!(#ident) }
        });
        let call = quote!(self.#method(ctx, #(#pass),*));
        let output = if tx.returns_result {
            quote!(::cchost_sdk::contract::__output(#call))
        } else {
            quote!(::cchost_sdk::contract::__output(::core::result::Result::<_, ::cchost_sdk::Error>::Ok(#call)))
        };
        quote! {
            #tx_name => ::core::option::Option::Some((|| -> ::core::result::Result<::std::vec::Vec<u8>, ::cchost_sdk::Error> {
                #arity
                #(#decode)*
                ::cchost_sdk::contract::Contract::before_transaction(self, ctx)?;
                #output
            })()),
        }
    });

    let before = hooks.before.map(|h| quote! {
        fn before_transaction(&self, ctx: &::cchost_sdk::contract::Context) -> ::core::result::Result<(), ::cchost_sdk::Error> {
            ::core::result::Result::map_err(self.#h(ctx), ::core::convert::Into::into)
        }
    });
    let after = hooks.after.map(|h| quote! {
        fn after_transaction(&self, ctx: &::cchost_sdk::contract::Context, payload: &[u8]) -> ::core::result::Result<(), ::cchost_sdk::Error> {
            ::core::result::Result::map_err(self.#h(ctx, payload), ::core::convert::Into::into)
        }
    });
    let unknown = hooks.unknown.map(|h| quote! {
        fn unknown_transaction(&self, ctx: &::cchost_sdk::contract::Context, function: &str) -> ::core::result::Result<::std::vec::Vec<u8>, ::cchost_sdk::Error> {
            ::core::result::Result::map_err(self.#h(ctx, function), ::core::convert::Into::into)
        }
    });

    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    Ok(quote! {
        #block

        impl #impl_generics ::cchost_sdk::contract::Contract for #self_ty #where_clause {
            fn name(&self) -> &'static str {
                #name
            }

            fn info(&self) -> (&'static str, &'static str) {
                (#title, #version)
            }

            fn transactions(&self) -> ::std::vec::Vec<::cchost_sdk::contract::TransactionInfo> {
                ::std::vec![#(#infos),*]
            }

            #[allow(clippy::redundant_closure_call, unused_variables)]
            fn call(
                &self,
                ctx: &::cchost_sdk::contract::Context,
                function: &str,
                args: &[::std::vec::Vec<u8>],
            ) -> ::core::option::Option<::core::result::Result<::std::vec::Vec<u8>, ::cchost_sdk::Error>> {
                match function {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }

            #before
            #after
            #unknown
        }
    })
}

fn transaction(sig: &syn::Signature, attr: &syn::Attribute) -> Result<Transaction, Error> {
    let mut name = pascal(&sig.ident.to_string());
    let mut evaluate = false;
    let mut extra_args = false;
    if let Meta::List(_) = &attr.meta {
        let metas = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for meta in metas {
            match &meta {
                Meta::Path(p) if p.is_ident("evaluate") => evaluate = true,
                Meta::Path(p) if p.is_ident("submit") => evaluate = false,
                Meta::Path(p) if p.is_ident("extra_args") => extra_args = true,
                Meta::NameValue(nv) if nv.path.is_ident("name") => name = string_value(&nv.value)?,
                other => {
                    return Err(Error::new(
                        other.span(),
                        "expected submit, evaluate, extra_args or name = \"...\"",
                    ));
                }
            }
        }
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if matches!(r.kind, ReceiverKind::Reference(_, _, None)) => {}
        _ => {
            return Err(Error::new(
                sig.span(),
                "a transaction takes &self, then the context: fn(&self, ctx: &Context, ...)",
            ));
        }
    }
    if inputs.next().is_none() {
        return Err(Error::new(
            sig.span(),
            "a transaction takes the context after &self: fn(&self, ctx: &Context, ...)",
        ));
    }
    let mut params = Vec::new();
    for (i, input) in inputs.enumerate() {
        let FnArg::Typed(pt) = input else {
            return Err(Error::new(input.span(), "unexpected receiver"));
        };
        let ident = match &*pt.pat {
            Pat::Ident(p) => p.ident.clone(),
            Pat::Wild(_) => format_ident!("arg{}", i),
            other => {
                return Err(Error::new(
                    other.span(),
                    "a transaction parameter must be a plain name",
                ));
            }
        };
        let (owned, by_ref) = match &*pt.ty {
            Type::Reference(r) => {
                if r.mutability.is_some() {
                    return Err(Error::new(
                        r.span(),
                        "a transaction parameter cannot be &mut",
                    ));
                }
                match &*r.elem {
                    Type::Path(p) if p.path.is_ident("str") => {
                        (syn::parse_quote!(::std::string::String), true)
                    }
                    other => (other.clone(), true),
                }
            }
            other => (other.clone(), false),
        };
        params.push(Param {
            ident,
            owned,
            by_ref,
        });
    }
    let (returns, returns_result) = match &sig.output {
        ReturnType::Default => (None, false),
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(ok) => (non_unit(ok), true),
            None => (non_unit(ty), false),
        },
    };
    Ok(Transaction {
        method: sig.ident.clone(),
        name,
        evaluate,
        extra_args,
        params,
        returns,
        returns_result,
    })
}

/// `T` of `Result<T>` / `Result<T, E>` / `some::path::Result<T, ..>`.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

fn non_unit(ty: &Type) -> Option<Type> {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => None,
        other => Some(other.clone()),
    }
}

/// `create_asset` → `CreateAsset`.
fn pascal(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// `appraised_value` → `appraisedValue`.
fn lower_camel(name: &str) -> String {
    let pascal = pascal(name.trim_start_matches('_'));
    let mut chars = pascal.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_converted_like_fabric_clients_expect() {
        assert_eq!(pascal("create_asset"), "CreateAsset");
        assert_eq!(pascal("init_ledger"), "InitLedger");
        assert_eq!(pascal("get_all_assets"), "GetAllAssets");
        assert_eq!(lower_camel("appraised_value"), "appraisedValue");
        assert_eq!(lower_camel("id"), "id");
    }

    #[test]
    fn a_transaction_without_the_context_is_refused() {
        let e = expand_contract(
            Tokens::new(),
            quote! { impl A { #[transaction] fn f(&self) -> u32 { 1 } } },
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("a transaction takes the context after &self: fn(&self, ctx: &Context, ...)")
        );
    }
}
