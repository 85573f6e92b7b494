// Package ecs holds the Amazon ECS wire shapes, their input validation and the
// operation table, generated from the botocore service model.
package ecs

//go:generate go run ../../../tools/apigen -service ecs -package ecs -invalid-code InvalidParameterException -enum-form one-of -out .
